"""Video files through FFmpeg's libraries (PyAV): codecs per container (formats), decoding
with timestamps (reader), encoding with the input's sound (writer)."""
