"""The batch/v1 Job that runs one training job, and what a Job's status means for ours.

Plain dicts in the API's JSON form (camelCase), as `kubectl` and the watch
stream show them: `render` is what the executor sends (the official client
parses it into a V1Job), and `job_state` reads what the API server returns.

The Job runs the same worker with the same spec.json as the local executor,
on the volume the training service and the model services share: the
training data folder (datasets, job folders with checkpoints and the staged
model) is a folder of that claim, mounted at the same path as in the training
service's pod, so spec.json's paths hold in both.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from services.training.records import FAILED, QUEUED, RUNNING, SUCCEEDED
from services.training.settings import TrainingSettings
from services.training.worker import EXIT_FAILED

NAME_PREFIX = "lumen-train-"
MANAGED_BY = "lumen-training"
SELECTOR = f"app.kubernetes.io/managed-by={MANAGED_BY}"
JOB_ID_LABEL = "training.lumen.dev/job-id"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
CONTAINER = "train"
UID = 10001  # the "lumen" user of deploy/docker/Dockerfile


def job_name(job_id: str) -> str:
    return NAME_PREFIX + job_id


def threads(cpu: str) -> int:
    """Threads for a pod of ``cpu`` (a Kubernetes quantity: "2", "1.5", "500m"), rounded up."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(m?)", cpu.strip())
    if match is None:
        raise ValueError(f"LUMEN_TRAINING_KUBERNETES_CPU={cpu!r} is not a CPU quantity such as 2 or 500m")
    value = float(match.group(1)) / (1000 if match.group(2) else 1)
    return max(1, math.ceil(value))


def render(job_id: str, job_dir: Path, settings: TrainingSettings) -> dict[str, Any]:
    """The Job for ``job_id`` whose spec.json is in ``job_dir`` (a folder of settings.data_path())."""
    data_dir = settings.data_path()
    job_dir.relative_to(data_dir)  # ValueError if the pod could not see it
    labels = {
        "app.kubernetes.io/name": "lumen-training-job",
        "app.kubernetes.io/component": "training-job",
        "app.kubernetes.io/part-of": "lumen",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        JOB_ID_LABEL: job_id,
    }
    job_labels = {**labels, QUEUE_LABEL: settings.kubernetes_queue} if settings.kubernetes_queue else labels
    amount = {"cpu": settings.kubernetes_cpu, "memory": settings.kubernetes_memory}
    limits: dict[str, Any] = dict(amount)
    if settings.kubernetes_gpus > 0:
        limits["nvidia.com/gpu"] = settings.kubernetes_gpus
    mount: dict[str, Any] = {"name": "training-data", "mountPath": str(data_dir)}
    if settings.kubernetes_volume_subpath:
        mount["subPath"] = settings.kubernetes_volume_subpath
    spec: dict[str, Any] = {
        # Kueue unsuspends the Job when it admits it (and suspends it again to preempt it).
        "suspend": bool(settings.kubernetes_queue),
        "backoffLimit": settings.kubernetes_backoff_limit,
        "podFailurePolicy": {
            "rules": [
                # Evicted or preempted pods are retried for free: the retry resumes from the checkpoint.
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
                # The recipe failed on its own (bad data, NaN loss): retrying gives the same answer.
                {
                    "action": "FailJob",
                    "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": [EXIT_FAILED]},
                },
            ]
        },
        "ttlSecondsAfterFinished": settings.kubernetes_ttl_s,
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "restartPolicy": "Never",  # podFailurePolicy needs it; retries are new pods
                "serviceAccountName": settings.kubernetes_service_account,
                "automountServiceAccountToken": False,  # the worker calls no API
                "enableServiceLinks": False,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": UID,
                    "runAsGroup": UID,
                    "fsGroup": UID,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": CONTAINER,
                        "image": settings.kubernetes_image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["python", "-m", "services.training.worker", str(job_dir)],
                        "env": [
                            # The pod's own CPU limit bounds it: no nice, as many threads as CPUs.
                            {"name": "LUMEN_TRAINING_WORKER_NICE", "value": "0"},
                            {"name": "LUMEN_TRAINING_WORKER_THREADS", "value": str(threads(settings.kubernetes_cpu))},
                        ],
                        "resources": {"requests": amount, "limits": limits},
                        "securityContext": {
                            "privileged": False,
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "volumeMounts": [mount, {"name": "tmp", "mountPath": "/tmp"}],
                    }
                ],
                "volumes": [
                    {"name": "training-data", "persistentVolumeClaim": {"claimName": settings.kubernetes_volume_claim}},
                    {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},  # HOME and the libraries' caches
                ],
            },
        },
    }
    if settings.kubernetes_deadline_s > 0:
        spec["activeDeadlineSeconds"] = settings.kubernetes_deadline_s
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name(job_id), "namespace": settings.kubernetes_namespace, "labels": job_labels},
        "spec": spec,
    }


def job_id_of(job: dict[str, Any]) -> str:
    return str(((job.get("metadata") or {}).get("labels") or {}).get(JOB_ID_LABEL, ""))


def job_state(job: dict[str, Any]) -> tuple[str, str]:
    """(our state, why) for a Job as the API server shows it.

    Complete / Failed conditions end it; a suspended Job (spec.suspend, or its
    Suspended condition while the pods stop) is QUEUED: Kueue has not admitted
    it, or preempted it. Anything else is RUNNING, pods pending included.
    FailureTarget and SuccessCriteriaMet (Kubernetes 1.31+) come before the
    terminal condition while pods stop: the job is still RUNNING then.
    """
    status = job.get("status") or {}
    true = {c.get("type"): c for c in status.get("conditions") or () if c.get("status") == "True"}
    if "Complete" in true:
        return SUCCEEDED, ""
    if "Failed" in true:
        failed = true["Failed"]
        return FAILED, f"the Kubernetes Job failed: {failed.get('reason', '')}: {failed.get('message', '')}".strip()
    if (job.get("spec") or {}).get("suspend") or "Suspended" in true:
        return QUEUED, "suspended: waiting for its queue to admit it"
    return RUNNING, ""
