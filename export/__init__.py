"""Export to ONNX and TensorRT, and the runtimes behind the codec's --backend (not built yet)."""
