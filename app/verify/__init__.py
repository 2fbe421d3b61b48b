"""`b24emu verify`: replay a recording against the emulator and report where its answers differ
from the portal's in shape (`b24emu.verify.compare`)."""
