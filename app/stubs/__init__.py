"""Stubs: answers for REST methods the emulator does not emulate (or, with `override`, does).

A stub names a method, optionally a subset of parameters it matches, and an answer: a `result`
(any JSON, with `{{...}}` templates, `b24emu.stubs.template`), or an error; optionally a sequence
of answers, a latency, the scope it needs and events it fires. Stubs live per portal in the
`stubs` table (`b24emu.stubs.store`), come from fixtures, the control API, the CLI and the
pytest plugin, and are answered through the same front door as every method
(`b24emu.stubs.answer.resolve`, called by `b24emu.rest.dispatch` and `batch`).
"""
