"""Small loopback fakes of Google Cloud APIs that have no usable local emulator."""
