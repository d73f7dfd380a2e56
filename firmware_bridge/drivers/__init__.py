"""Small hardware drivers (MicroPython): each hides one part behind the interface node.py uses."""
