"""Response models of the HTTP API (they shape the OpenAPI document and its examples)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ClassScoreOut(BaseModel):
    label: str = Field(description="class name")
    score: float = Field(description="probability in [0, 1]")


class ImagePrediction(BaseModel):
    """The prediction for one uploaded image."""

    filename: str | None = Field(description="the uploaded file's name, when it had one")
    label: str = Field(description="the best class, or 'unknown' when its score is under `threshold`")
    score: float = Field(description="probability of the best class")
    top_k: list[ClassScoreOut] = Field(description="the best classes, best first")


class BoxOut(BaseModel):
    box: list[float] = Field(description="x1, y1, x2, y2 in the original image's pixels")
    label: str = Field(description="class name")
    score: float = Field(description="confidence in [0, 1]")
    landmarks: list[list[float]] | None = Field(
        default=None,
        description="[x, y] points in the original image's pixels when the model gives them (face detectors: "
        "5 points, eye on the image's left, other eye, nose tip, mouth corners); null otherwise",
    )


class ImageDetections(BaseModel):
    """What a detection model found in one uploaded image."""

    filename: str | None = Field(description="the uploaded file's name, when it had one")
    image_size: list[int] = Field(description="width, height of the image the boxes refer to")
    detections: list[BoxOut] = Field(description="the objects, best score first (empty when none)")


class RleOut(BaseModel):
    size: list[int] = Field(description="height, width of the original image")
    counts: str = Field(description="COCO compressed RLE (column-major runs), as pycocotools writes it")


class SegmentOut(BaseModel):
    label: str = Field(description="class name")
    class_id: int = Field(description="the class index (the value of its pixels in `mask_png`)")
    area: int = Field(description="pixels of the class in the original image")
    rle: RleOut = Field(description="the class's pixels at the original resolution")
    score: float | None = Field(default=None, description="mean probability of its pixels, when the model gives them")


class ImageSegmentation(BaseModel):
    """The class of every pixel of one uploaded image (background left out of `segments`)."""

    filename: str | None = Field(description="the uploaded file's name, when it had one")
    image_size: list[int] = Field(description="width, height of the image the masks cover")
    segments: list[SegmentOut] = Field(description="one entry per class present")
    mask_png: str | None = Field(default=None, description="with masks=png: the index mask as a base64 palette "
                                 "PNG at the original resolution (pixel value = class index, VOC colours)")  # fmt: skip


class InstanceOut(BaseModel):
    box: list[float] = Field(description="x1, y1, x2, y2 in the original image's pixels")
    label: str
    score: float
    area: int = Field(description="pixels of the object's mask")
    mask: RleOut = Field(description="the object's mask at the original resolution")


class ImageInstances(BaseModel):
    """Every object of one uploaded image with its mask (instance segmentation)."""

    filename: str | None
    image_size: list[int]
    instances: list[InstanceOut]


class ItemErrorOut(BaseModel):
    code: str = Field(description="stable snake_case error code, e.g. image_invalid")
    message: str = Field(description="what was wrong and how to fix it")


class ImageFailure(BaseModel):
    """An image of a multi-image request that could not be predicted; the others were."""

    filename: str | None
    error: ItemErrorOut


class PredictResponse(BaseModel):
    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {
                    "model": "resnet18-1",
                    "predictions": [
                        {
                            "filename": "cat.jpg",
                            "label": "cat",
                            "score": 0.93,
                            "top_k": [{"label": "cat", "score": 0.93}, {"label": "dog", "score": 0.05}],
                        },
                        {"filename": "notes.txt", "error": {"code": "unsupported_media_type", "message": "..."}},
                    ],
                    "latency_ms": 12.4,
                    "request_id": "3f2b9c0e5d7a4e51a1f0c2b7d9e8f601",
                }
            ]
        },
    )

    model: str = Field(description="the model that answered")
    predictions: list[ImagePrediction | ImageDetections | ImageSegmentation | ImageInstances | ImageFailure] = Field(
        description="one entry per image, in upload order"
    )
    latency_ms: float = Field(description="server time for the whole request")
    request_id: str


class ModelSummary(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    name: str = Field(description="the name used in URLs (the run directory name)")
    architecture: str = Field(description="registered model name, e.g. resnet18 or hog-svm")
    family: str = Field(description="backend: classical, torch, onnx, external or probe")
    task: str = Field("classify", description="what the model does: classify, detect, segment or instance")
    num_classes: int
    image_size: int = Field(description="model input side in pixels")


class ModelDetail(ModelSummary):
    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {
                    "name": "hog-svm-1",
                    "architecture": "hog-svm",
                    "family": "classical",
                    "num_classes": 2,
                    "image_size": 64,
                    "classes": ["ants", "bees"],
                    "preprocessing": {"size": 64, "crop_pct": 1.0, "interpolation": "bilinear"},
                    "metrics": {"test": {"accuracy": 0.71, "macro_f1": 0.7}},
                    "num_params": 1765,
                    "created": "2024-05-01T10:00:00+00:00",
                }
            ]
        },
    )

    classes: list[str]
    preprocessing: dict[str, Any] = Field(description="resize/crop/normalization the model expects")
    metrics: dict[str, Any] = Field(description="evaluation summary from model.json (per split)")
    num_params: int | None = None
    created: str | None = None


class ModelList(BaseModel):
    models: list[ModelSummary]


class Health(BaseModel):
    status: str = Field(description="'ok' when alive / ready")
    models: list[str] = Field(default_factory=list, description="models loaded and accepting work")


class ErrorDetail(BaseModel):
    code: str = Field(description="stable snake_case code (see the API description)")
    message: str
    request_id: str | None = None


class ErrorResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "image_invalid",
                        "message": "photo.jpg could not be decoded: image file is truncated",
                        "request_id": "3f2b9c0e5d7a4e51a1f0c2b7d9e8f601",
                    }
                }
            ]
        }
    )

    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the given error statuses."""
    words = {
        400: "Malformed request",
        401: "API key required",
        403: "API key not accepted",
        404: "Unknown model",
        408: "The body did not arrive within the request deadline",
        413: "Body over the upload limit",
        415: "Not an allowed image format",
        422: "Invalid or too large image, or an invalid parameter",
        503: "Overloaded, past the deadline, or not ready (see Retry-After)",
    }
    return {s: {"model": ErrorResponse, "description": words.get(s, "Error")} for s in statuses}
