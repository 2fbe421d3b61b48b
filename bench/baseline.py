"""The baseline of `make bench`: a bare Flask app answering a fixed JSON body."""

from flask import Flask, Response

app = Flask(__name__)
BODY = b'{"result":1,"time":{"start":1767225600.0}}'


@app.route("/rest/<path:anything>", methods=["GET", "POST"])
def fixed(anything):
    """The same answer to every call, as cheap as Flask can be."""
    return Response(BODY, 200, {"Content-Type": "application/json; charset=utf-8"})
