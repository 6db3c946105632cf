"""Settings of the vision service (environment prefix LUMEN_VISION_)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.settings import ModelServerSettings, database_url, setting


@dataclass
class VisionSettings(ModelServerSettings):
    port: int = setting(50053, "TCP port of the vision service.")
    # Images are big: one request may carry up to 16 images (8 to ClassifyImages) of a few MiB each.
    max_message_bytes: int = setting(64 * 1024 * 1024, "Largest gRPC message received or sent, in bytes (serialized).")
    max_image_bytes: int = setting(16 * 1024 * 1024, "Largest encoded image accepted, in bytes.")
    max_image_pixels: int = setting(
        16_000_000,
        "Largest image accepted, in pixels (width x height), checked before decoding. Decoding one costs "
        "about 12 bytes a pixel at its peak (see make bench-limits).",
    )
    max_call_pixels: int = setting(
        16_000_000,
        "Most pixels of all images of one ClassifyImages call together (3 bytes each once decoded), checked "
        "before decoding: bounds the call near 2 s CPU and 256 MB (32 MP took 4.2 s and 534 MB; make bench-limits).",
    )
    max_detect_call_pixels: int = setting(
        4_000_000,
        "Most pixels of all images of one call of the detection and face RPCs together (and of each image): "
        "detectors scan every pixel (32 MP took 10.5 s CPU in DetectFaces; make bench-limits).",
    )
    max_classify_images: int = setting(
        8, "Most images in one ClassifyImages call (32 took 3.6 s CPU and 457 MB, 16 took 325 MB; make bench-limits)."
    )
    max_images: int = setting(16, "Most images in one call of the detection and face RPCs.")
    max_call_faces: int = setting(
        8,
        "Most faces one call of EmbedFaces, IdentifyFaces or EnrollPerson embeds, all images together (so "
        "also its most images): each face costs about 0.09 s CPU on top of detection (16 images x 1 face "
        "took 3.1 s, 16 x 1,000 faces 13 s; make bench-limits). EnrollPerson counts two per image (it looks "
        "for a second face), so takes at most half as many images.",
    )
    galleries_dir: str = setting("", "Folder of the face-gallery database. Empty uses var/galleries.")
    database_url: str = database_url("face galleries", "galleries_dir")
