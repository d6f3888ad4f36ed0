"""Video files through FFmpeg's libraries (PyAV): which codecs per container, decoding with timestamps, encoding with the input's sound."""
