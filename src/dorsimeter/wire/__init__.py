"""Wire protocols: our sensor node's frames, the WitMotion BLE and UART packets, GATT identifiers.

Pure functions of bytes; decoders are numpy-vectorised and never raise on any input.
"""
