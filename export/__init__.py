"""Export to ONNX and TensorRT, and the runtimes behind the codec's --backend.

`python -m oval.export` writes the graphs; `oval.export.runtimes.load(backend, model, device)`
returns what the codec runs.
"""
