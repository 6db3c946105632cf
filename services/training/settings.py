"""Settings of the training service (environment prefix LUMEN_TRAINING_)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.training.dataset_formats import RecordLimits
from shared.settings import ServerSettings, setting

ROOT = Path(__file__).resolve().parents[2]
SERVING = ("nlp", "vision", "embeddings", "tabular")
DEFAULT_PORTS = {"nlp": 50052, "vision": 50053, "embeddings": 50054, "tabular": 50056}


@dataclass
class TrainingSettings(ServerSettings):
    port: int = setting(50055, "TCP port of the training service.")
    device: str = setting("cpu", "'cpu' or 'cuda:N': the device training processes see (CUDA_VISIBLE_DEVICES).")
    data_dir: str = setting("", "Folder of datasets, job records, checkpoints. Empty uses var/training.")
    max_dataset_bytes: int = setting(256 * 1024 * 1024, "Largest dataset accepted, in bytes.")
    max_record_bytes: int = setting(1 << 20, "Longest line of a CSV, JSONL or TEXT dataset, in bytes.")
    max_dataset_images: int = setting(50_000, "Most entries in an IMAGE_ZIP dataset (each is checked at upload).")
    max_image_bytes: int = setting(16 << 20, "Largest inflated size of one IMAGE_ZIP entry, in bytes.")
    max_image_pixels: int = setting(16_000_000, "Most pixels (width x height) of one IMAGE_ZIP image.")
    max_concurrent_jobs: int = setting(1, "Jobs that train at once; more wait QUEUED.")
    max_queued_jobs: int = setting(64, "Jobs that may wait QUEUED; past it CreateTrainingJob is RESOURCE_EXHAUSTED.")
    nice: int = setting(10, "Niceness of each training process (0-19), so serving keeps its cores.")
    threads: int = setting(1, "Threads of each training process (TensorFlow, torch, BLAS).")
    executor: str = setting(
        "local", "'local' (a subprocess per job) or 'kubernetes' (a batch/v1 Job per job, in kubernetes_namespace)."
    )
    kubernetes_namespace: str = setting("lumen", "Namespace of the training Jobs (kubernetes executor).")
    kubernetes_image: str = setting("lumen/training:0.1.0-cpu", "Image of the training Jobs (kubernetes executor).")
    kubernetes_queue: str = setting(
        "",
        "Kueue LocalQueue name; when set, Jobs are labelled kueue.x-k8s.io/queue-name and created suspended "
        "(Kueue admits them; a suspended Job reads as QUEUED). Raise max_concurrent_jobs then: it bounds the "
        "Jobs submitted at once, Kueue decides which run.",
    )
    kubernetes_volume_claim: str = setting(
        "lumen-models",
        "PersistentVolumeClaim the Jobs mount at data_dir: datasets, checkpoints and staged models; the model "
        "services mount the same claim (deploy/k8s/components/model-volume).",
    )
    kubernetes_volume_subpath: str = setting("training", "Folder of that claim that holds data_dir (empty: its root).")
    kubernetes_service_account: str = setting(
        "training-job", "ServiceAccount of the Job pods (no API rights needed; its token is not mounted)."
    )
    kubernetes_cpu: str = setting("2", "CPU request and limit of a Job's pod (Kubernetes quantity).")
    kubernetes_memory: str = setting("4Gi", "Memory request and limit of a Job's pod (Kubernetes quantity).")
    kubernetes_gpus: int = setting(0, "nvidia.com/gpu limit of a Job's pod (0: none).")
    kubernetes_backoff_limit: int = setting(
        2,
        "Pod retries of a Job whose process died (OOM kill, node loss); each retry resumes from the last "
        "checkpoint. A recipe's own failure (exit 1) fails the Job at once; evictions are not counted.",
    )
    kubernetes_ttl_s: int = setting(86400, "Seconds a finished Job stays in the cluster before Kubernetes deletes it.")
    kubernetes_deadline_s: int = setting(0, "activeDeadlineSeconds of a Job (0: none); past it the job FAILS.")
    backend_token_file: str = setting(
        "",
        "File with the backend token (as the model services' backend_token_file): required of callers "
        "(the gateway) when set, and sent on this service's LoadModel calls to the model services.",
    )
    nlp_address: str = setting("localhost:50052", "nlp service (serves text classifiers and next-word models).")
    vision_address: str = setting("localhost:50053", "vision service (serves image classifiers).")
    embeddings_address: str = setting("localhost:50054", "embeddings service (serves word vectors).")
    tabular_address: str = setting("localhost:50056", "tabular service (serves dense nets on feature rows).")
    nlp_repository: str = setting("", "Model repository of nlp; empty uses var/models/nlp.")
    vision_repository: str = setting("", "Model repository of vision; empty uses var/models/vision.")
    embeddings_repository: str = setting("", "Model repository of embeddings; empty uses var/models/embeddings.")
    tabular_repository: str = setting("", "Model repository of tabular; empty uses var/models/tabular.")

    def record_limits(self) -> RecordLimits:
        return RecordLimits(self.max_record_bytes, self.max_dataset_images, self.max_image_bytes, self.max_image_pixels)

    def data_path(self) -> Path:
        return Path(self.data_dir) if self.data_dir else ROOT / "var" / "training"

    def repository(self, service: str) -> Path:
        raw = getattr(self, f"{service}_repository")
        return Path(raw) if raw else ROOT / "var" / "models" / service

    def address(self, service: str) -> str:
        return getattr(self, f"{service}_address")
