"""Recording a real portal: a proxy that forwards REST calls unchanged and writes each request
and answer to a recording file, secrets masked (`b24emu record`). `b24emu stubs import` and
`b24emu verify` read the recordings."""
