"""The few calls the Kubernetes executor makes, over the official client's asyncio API.

`JobApi` is what the executor needs (jobs as the API's JSON dicts);
`ClusterJobApi` implements it with `kubernetes.aio` (BatchV1Api and its
Watch), configured in the pod from its ServiceAccount, elsewhere from
~/.kube/config. The ServiceAccount needs create, get, list, watch and delete
on jobs.batch in the namespace (deploy/k8s/components/training/role.yaml).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from kubernetes.aio import client, config, watch
from kubernetes.aio.client.exceptions import ApiException

__all__ = ["ApiException", "ClusterJobApi", "JobApi", "connect"]


class JobApi(Protocol):
    async def create(self, job: dict[str, Any]) -> None:
        """Create the Job; ApiException with status 409 when one of that name exists."""
        ...

    async def delete(self, name: str) -> None:
        """Delete the Job and its pods; a Job already gone is no error."""
        ...

    async def list(self, selector: str) -> tuple[list[dict[str, Any]], str]:
        """The Jobs with these labels, and the resourceVersion to watch from."""
        ...

    def watch(self, selector: str, resource_version: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """(ADDED | MODIFIED | DELETED, job) from that version on; ends when the server closes it."""
        ...

    async def close(self) -> None: ...


class ClusterJobApi:
    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self.api_client, self.namespace = api_client, namespace
        self.batch = client.BatchV1Api(api_client)

    async def create(self, job: dict[str, Any]) -> None:
        await self.batch.create_namespaced_job(self.namespace, client.V1Job.from_dict(job))

    async def delete(self, name: str) -> None:
        try:
            await self.batch.delete_namespaced_job(name, self.namespace, propagation_policy="Foreground")
        except ApiException as exc:
            if exc.status != 404:
                raise

    async def list(self, selector: str) -> tuple[list[dict[str, Any]], str]:
        found = await self.batch.list_namespaced_job(self.namespace, label_selector=selector)
        raw = self.api_client.sanitize_for_serialization(found)
        return list(raw.get("items") or []), str(raw.get("metadata", {}).get("resourceVersion", ""))

    async def watch(self, selector: str, resource_version: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        # A server-side timeout ends each watch; the executor lists and watches again.
        async with watch.Watch() as stream:
            async for event in stream.stream(
                self.batch.list_namespaced_job,
                self.namespace,
                label_selector=selector,
                resource_version=resource_version,
                timeout_seconds=300,
            ):
                yield str(event["type"]), dict(event["raw_object"])

    async def close(self) -> None:
        await self.api_client.close()


async def connect(namespace: str) -> ClusterJobApi:
    """In a pod: its ServiceAccount; elsewhere: ~/.kube/config (KUBECONFIG)."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        await config.load_kube_config()
    return ClusterJobApi(client.ApiClient(), namespace)
