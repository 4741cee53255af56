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


class ImageEmbedding(BaseModel):
    """The embedding of one uploaded image (an ``embed`` model: the image is taken as one face crop)."""

    filename: str | None = Field(description="the uploaded file's name, when it had one")
    embedder: str = Field(description="the model that made it (vectors of two embedders are not comparable)")
    dim: int = Field(description="the vector's length")
    embedding: list[float] = Field(description="the L2-normalized vector; compare two by their dot product (cosine)")


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
    mask_png: str | None = Field(default=None, description="with masks=png: every instance in one index PNG at the "
                                 "original resolution (pixel value k = the k-th instance, 0 = none)")  # fmt: skip


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
    predictions: list[
        ImagePrediction | ImageDetections | ImageSegmentation | ImageInstances | ImageEmbedding | ImageFailure
    ] = Field(description="one entry per image, in upload order")
    latency_ms: float = Field(description="server time for the whole request")
    request_id: str


class ModelSummary(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    name: str = Field(description="the name used in URLs (the run directory name)")
    architecture: str = Field(description="registered model name, e.g. resnet18 or hog-svm")
    family: str = Field(description="backend: classical, torch, onnx, external or probe")
    task: str = Field("classify", description="what the model does: classify, detect, segment, instance or embed")
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


class CollectionCreate(BaseModel):
    """A new face collection; it holds the served embedder's vectors."""

    name: str = Field(min_length=1, max_length=200, description="unique in the database")
    threshold: float | None = Field(
        default=None, ge=-1.0, le=1.0,
        description="cosine similarity from which a face is a known person (default: the embedder's own)",
    )  # fmt: skip


class CollectionOut(BaseModel):
    name: str
    embedder: str = Field(description="the model whose vectors it holds")
    dim: int = Field(description="the vectors' length")
    threshold: float = Field(description="cosine similarity from which a match is a known person")
    faces: int = Field(description="faces enrolled")
    created: str


class CollectionList(BaseModel):
    collections: list[CollectionOut]
    served: str = Field(description="the collection `imgrec serve --faces` named (the web page's default)")


class CollectionDeleted(BaseModel):
    collection: str
    deleted_faces: int = Field(description="faces hard-deleted with it (rows, embeddings, crops)")


class PersonOut(BaseModel):
    name: str
    faces: int = Field(description="faces enrolled for this person")
    created: str


class PersonList(BaseModel):
    collection: str
    persons: list[PersonOut]


class PersonRemoved(BaseModel):
    collection: str
    person: str
    removed_faces: int = Field(description="faces hard-deleted (rows, embeddings, crops)")


class EnrolledImageOut(BaseModel):
    filename: str | None = Field(description="the uploaded file's name")
    status: str = Field(description="added, already_enrolled, no_face or error")
    face_ids: list[int] = Field(description="the faces' ids in the collection")
    boxes: list[list[float]] = Field(description="x1, y1, x2, y2 of each enrolled face in the image's pixels")
    message: str = Field(description="why the image added nothing")


class EnrollResponse(BaseModel):
    collection: str
    person: str
    added: int = Field(description="faces this request added")
    images: list[EnrolledImageOut] = Field(description="one entry per uploaded image, in upload order")
    request_id: str


class MatchOut(BaseModel):
    person: str
    similarity: float = Field(description="cosine similarity in [-1, 1]")
    known: bool = Field(description="at or above the collection's threshold")


class FaceMatchOut(BoxOut):
    aligned: bool = Field(description="the face was aligned by its landmarks before embedding")
    similarity: float | None = Field(description="the best match's similarity (null: empty collection)")
    matches: list[MatchOut] = Field(description="the best persons, most similar first (top_k)")


class SearchResponse(BaseModel):
    """Every face of the uploaded image, largest first; ``label`` is the best person or 'unknown'."""

    collection: str
    threshold: float
    filename: str | None
    image_size: list[int] = Field(description="width, height of the image the boxes refer to")
    faces: list[FaceMatchOut] = Field(description="empty when the image has no face")
    latency_ms: float
    request_id: str


class FaceDetectResponse(BaseModel):
    """The faces (boxes and 5 landmarks) of each uploaded image."""

    detector: str
    predictions: list[ImageDetections | ImageFailure]
    latency_ms: float
    request_id: str


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
        404: "Unknown model, collection or person",
        408: "The body did not arrive within the request deadline",
        409: "Conflicts with the store (name taken, another embedder, a face enrolled for another person)",
        413: "Body over the upload limit",
        415: "Not an allowed image format",
        422: "Invalid or too large image, or an invalid parameter",
        503: "Overloaded, past the deadline, or not ready (see Retry-After)",
    }
    return {s: {"model": ErrorResponse, "description": words.get(s, "Error")} for s in statuses}
