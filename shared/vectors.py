"""Conversions between numpy vectors and lumen.common.v1.Vector (sentence, word and face embeddings)."""

from __future__ import annotations

import numpy as np

from lumen.common.v1 import common_pb2 as pb


def to_proto(vector: np.ndarray, encoding: int) -> pb.Vector:
    vector = np.asarray(vector, dtype=np.float32)
    if encoding == pb.VECTOR_ENCODING_F32_BYTES:
        return pb.Vector(values_f32=vector.astype("<f4").tobytes(), dimension=vector.shape[0])
    return pb.Vector(values=vector.tolist(), dimension=vector.shape[0])


def from_proto(vector: pb.Vector) -> np.ndarray:
    if vector.values_f32:
        return np.frombuffer(vector.values_f32, dtype="<f4").astype(np.float32)
    return np.asarray(vector.values, dtype=np.float32)


def l2_normalize(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    normalized: np.ndarray = matrix / np.maximum(norms, 1e-12)
    return normalized
