"""What a training run is: every flag of python -m oval.train (TrainConfig), its command line
with the checks a bad value fails, the fields a resumed run must keep, and the model config the
flags imply. oval.train runs it."""
import argparse
import dataclasses
from pathlib import Path

from oval.errors import OvalError

DESCRIPTION = "python -m oval.train: train a model on a corpus or on video files (see README \"Training\")."

# Fields that define what is being trained: a resumed run must keep them.
RESUME_KEYS = ("arch", "N", "M", "C", "lmbda", "distortion", "quantizer", "crop", "batch_size", "lr", "min_lr",
               "frames", "lead_frames", "memory", "colour_space", "backbone", "stage", "motion", "residual", "switchable_filter", "new_part", "new_part_lr_scale",
               "compensation", "intra_encoder_blocks", "intra_decoder_blocks")
# TrainConfig fields that are model config fields, passed on where the architecture has them.
MODEL_KEYS = ("N", "M", "C", "memory", "colour_space", "backbone", "motion", "residual", "switchable_filter",
              "skip_frames", "vector_predictor", "compensation", "intra_encoder_blocks", "intra_decoder_blocks")


def _opt(default, help_text: str):
    return dataclasses.field(default=default, metadata={"help": help_text})


@dataclasses.dataclass
class TrainConfig:
    data: list
    out: str
    arch: str = _opt("oval-rt", "model architecture id (oval-rt ships; oval-video and oval-factorized are "
                                "the first generation)")
    stage: str = _opt("joint", "oval-rt: intra (I-frames only, --frames 1), inter (P-frames on a frozen "
                               "intra model, --init it) or joint")
    N: int = _opt(64, "channels of the hidden layers (first-generation models)")
    M: int = _opt(0, "channels of the latent representation (0: the architecture's default)")
    C: int = _opt(0, "oval-rt: channels of the 1/8-resolution features (0: default)")
    steps: int = _opt(5000, "training steps in all (a resumed run continues up to this); 0 with --hours: "
                            "train by time, the learning-rate schedule following the clock")
    batch_size: int = _opt(8, "crops per step and process")
    crop: tuple = _opt((128, 128), "training crop height and width (one value: a square)")
    lmbda: float = _opt(0.013, "rate-distortion trade-off of single-rate models (oval-factorized): higher "
                               "gives more quality and more bits; multi-rate models train every level at its own")
    frames: int = _opt(1, "frames per training clip: the first intra, the rest P-frames (temporal models)")
    lead_frames: int = _opt(0, "oval-rt --stage inter: up to this many P-frames (their number drawn per step) "
                               "coded without gradients before each clip's --frames - 1 trained ones, which so "
                               "learn from references as deep into a group as the decoder meets them")
    memory: bool = _opt(False, "ConvLSTM memory across P-frames (oval-video)")
    motion: bool = _opt(False, "oval-rt: explicit block motion in P-frames (vectors estimated by the encoder "
                               "warp the previous picture, feature and latent)")
    residual: bool = _opt(False, "oval-rt with --motion: P-frames code the difference from the motion-compensated "
                                 "picture (x̂ = prediction + decoded residual)")
    switchable_filter: bool = _opt(False, "oval-rt with --motion: the encoder names the motion-compensated picture's "
                                          "interpolation per frame (bilinear or bicubic, the one that predicts better)")
    skip_frames: bool = _opt(False, "oval-rt with --switchable-filter: the encoder may send a P-frame as its motion "
                                    "alone where that costs less (a coding choice the training does not see; the "
                                    "shipped default has it)")
    vector_predictor: str = _opt("median", "oval-rt with --motion: what each motion vector is sent against, "
                                           "median (of left, above, above-right) or left (the models before "
                                           "2026-12-01); a coding choice the training does not see")
    intra_encoder_blocks: int = _opt(0, "oval-rt: depth-conv blocks of the intra analysis (0: the architecture's, "
                                        "as many as the P-frames'); with --init from a shallower model the "
                                        "added blocks start as identities")
    intra_decoder_blocks: int = _opt(0, "oval-rt: depth-conv blocks of the intra synthesis (0: as many as the P-frames')")
    compensation: str = _opt("obmc", "oval-rt with --motion: how the vectors move the previous picture and feature, "
                                     "obmc (overlapped blocks) or smooth (a dense field interpolated from them, the "
                                     "models before 2026-12-02)")
    colour_space: str = _opt("rgb", "space the model codes in: rgb, ycbcr-bt601 or ycbcr-bt709 (oval-video)")
    backbone: str = _opt("", "resnet: a torchvision ResNet stem opens the analysis transform (oval-video)")
    backbone_weights: str = _opt("", "local torchvision ResNet state dict (.pth) for --backbone; nothing "
                                     "is downloaded")
    init: str = _opt("", "start from the weights of this model (default, a file or a run dir) where names "
                         "and shapes match")
    distortion: str = _opt("mse", "distortion term: mse or ms-ssim")
    quantizer: str = _opt("noise", "training proxy for rounding: noise, or mixed (rounded values to the "
                                   "synthesis with a straight-through gradient, noise for the rate)")
    noise: float = _opt(0.0, "Gaussian noise sigma on the model's input in training (never in evaluation)")
    lr: float = _opt(3e-4, "peak learning rate (Adam)")
    new_part: str = _opt("", "a parameter-name prefix (e.g. motion_stem) trained at --lr x --new-part-lr-scale: a new "
                             "part on a trained model learns fast while the rest is only fine-tuned")
    new_part_lr_scale: float = _opt(1.0, "learning-rate multiplier of --new-part")
    min_lr: float = _opt(1e-5, "learning rate at the end of the cosine decay")
    clip: float = _opt(1.0, "gradient-norm clipping")
    max_frames: int = _opt(300, "frames read per clip")
    photo_share: float = _opt(0.7, "corpus data: share of samples cut from photos with synthetic motion "
                                   "(the rest from real clips)")
    flat_share: float = _opt(0.0, "corpus data: share of samples that are flat or smooth synthetic pictures "
                                  "(colours, gradients, blurred photos) with camera motion: they should cost nothing")
    hours: float = _opt(0.0, "stop cleanly after this many hours of wall-clock time and save (0: no limit); "
                              "a resumed run counts the hours it has already trained")
    save_minutes: float = _opt(10.0, "also checkpoint every this many minutes")
    threads: int = _opt(0, "torch CPU threads (0: torch's default)")
    val: str = _opt("", "held-out clip for validation (default: the corpus's validation clip, or the first "
                        "--data file)")
    val_frames: int = _opt(4, "validation frames coded through the real entropy coder")
    val_every: int = _opt(1000, "steps between validations")
    device: str = _opt("auto", "auto, cpu or cuda")
    loader: str = _opt("auto", "auto, pyav or dali")
    workers: int = _opt(2, "PyAV loader threads")
    compile: bool = _opt(False, "torch.compile the model (useful on CUDA)")
    seed: int = _opt(0, "random seed")
    log_every: int = _opt(100, "steps between log lines and TensorBoard scalars")
    save_every: int = _opt(1000, "steps between checkpoints")


def parse_args(argv=None) -> tuple[TrainConfig, bool]:
    p = argparse.ArgumentParser(prog="python -m oval.train", description=DESCRIPTION)
    p.add_argument("--data", nargs="+", required=True, help="a corpus directory (with manifest.json), or "
                                                            "video files and directories of them")
    p.add_argument("--out", required=True, help="run directory")
    defaults = TrainConfig(data=[], out="")
    for field in dataclasses.fields(TrainConfig):
        if field.name in ("data", "out"):
            continue
        flag, default = "--" + field.name.replace("_", "-"), getattr(defaults, field.name)
        text = field.metadata["help"]
        if isinstance(default, bool):
            p.add_argument(flag, action="store_true", help=text)
        elif isinstance(default, tuple):
            p.add_argument(flag, type=int, nargs="+", default=default, metavar=("H", "W"),
                           help=f"{text} (default: {default[0]} {default[1]})")
        else:
            aliases = ("--color-space",) if field.name == "colour_space" else ()
            p.add_argument(flag, *aliases, type=type(default), default=default, help=f"{text} (default: {default})")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/last.pt")
    args = vars(p.parse_args(argv))
    resume = args.pop("resume")
    if not 1 <= len(args["crop"]) <= 2:
        raise OvalError("--crop takes H and W (or one value for a square)")
    args["crop"] = (args["crop"][0], args["crop"][-1])
    cfg = TrainConfig(**args)
    if cfg.distortion not in ("mse", "ms-ssim"):
        raise OvalError(f"--distortion must be mse or ms-ssim, not {cfg.distortion!r}")
    if cfg.quantizer not in ("noise", "mixed"):
        raise OvalError(f"--quantizer must be noise or mixed, not {cfg.quantizer!r}")
    from oval.kernels import COLOUR_SPACES
    if cfg.colour_space not in COLOUR_SPACES:
        raise OvalError(f"--colour-space must be one of {', '.join(COLOUR_SPACES)}, not {cfg.colour_space!r}")
    from oval.models.motion import COMPENSATIONS, PREDICTORS
    if cfg.compensation not in COMPENSATIONS:
        raise OvalError(f"--compensation must be one of {', '.join(COMPENSATIONS)}, not {cfg.compensation!r}")
    if cfg.vector_predictor not in PREDICTORS:
        raise OvalError(f"--vector-predictor must be one of {', '.join(PREDICTORS)}, not {cfg.vector_predictor!r}")
    if cfg.skip_frames and not cfg.switchable_filter:
        raise OvalError("--skip-frames needs --switchable-filter (the skip flag rides on the filter byte)")
    if cfg.backbone_weights and not cfg.backbone:
        raise OvalError("--backbone-weights needs --backbone resnet")
    if cfg.frames < 1:
        raise OvalError("--frames must be at least 1")
    if cfg.stage not in ("joint", "intra", "inter"):
        raise OvalError(f"--stage must be joint, intra or inter, not {cfg.stage!r}")
    if cfg.stage == "intra" and cfg.frames != 1 or cfg.stage == "inter" and cfg.frames < 2:
        raise OvalError(f"--stage {cfg.stage} trains on " + ("single frames: --frames 1" if cfg.stage == "intra"
                                                             else "clips: --frames 2 or more"))
    if cfg.lead_frames < 0 or cfg.lead_frames and (cfg.arch != "oval-rt" or cfg.stage != "inter"):
        raise OvalError("--lead-frames is a count of P-frames for oval-rt --stage inter (0 or more)")
    if cfg.steps <= 0 and cfg.hours <= 0:
        raise OvalError("--steps 0 trains by time: give --hours")
    if not 0 <= cfg.photo_share <= 1:
        raise OvalError("--photo-share must be between 0 and 1")
    if not 0 <= cfg.flat_share <= 1:
        raise OvalError("--flat-share must be between 0 and 1")
    if cfg.loader not in ("auto", "pyav", "dali"):
        raise OvalError(f"--loader must be auto, pyav or dali, not {cfg.loader!r}")
    if any(c % 16 or c < 16 for c in cfg.crop):
        raise OvalError(f"--crop sizes must be positive multiples of 16, not {cfg.crop[0]} {cfg.crop[1]}")
    if cfg.distortion == "ms-ssim" and min(cfg.crop) <= 96:
        raise OvalError("--distortion ms-ssim needs crops larger than 96 pixels (five scales)")
    return cfg, resume


def model_config(cfg: TrainConfig) -> dict:
    from oval.models.registry import model_class
    try:
        fields = {f.name for f in dataclasses.fields(model_class(cfg.arch).Config)}
    except KeyError:
        raise OvalError(f"unknown model architecture {cfg.arch!r}") from None
    defaults = TrainConfig(data=[], out="")
    for key in MODEL_KEYS:
        if key not in fields and getattr(cfg, key) != getattr(defaults, key):
            raise OvalError(f"--{key.replace('_', '-')} does not apply to {cfg.arch}")
    config = {k: getattr(cfg, k) for k in MODEL_KEYS if k in fields and getattr(cfg, k) != 0}  # 0: the default
    if not cfg.motion:
        config.pop("vector_predictor", None)  # no vectors to send: the model's default, and its fingerprint
        config.pop("compensation", None)
    return config


def check_resume_keys(saved: dict, cfg: TrainConfig, where: Path) -> None:
    for key in RESUME_KEYS:
        old, new = saved.get(key), getattr(cfg, key)
        if key in saved and (tuple(old) if isinstance(old, list) else old) != new:
            raise OvalError(f"cannot resume {where}: --{key.replace('_', '-')} {new} differs from the run's {old}")
