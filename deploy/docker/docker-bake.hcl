# Every image at once, from the repository root:
#   docker buildx bake -f deploy/docker/docker-bake.hcl            # gateway + CPU services
#   docker buildx bake -f deploy/docker/docker-bake.hcl gpu        # GPU services
#   REGISTRY=registry.example.com/lumen docker buildx bake -f deploy/docker/docker-bake.hcl --push
# Tags match deploy/k8s (<registry>/<component>:<version>[-cpu|-gpu]).

variable "REGISTRY" {
  default = "lumen"
}

variable "VERSION" {
  default = "0.1.0"
}

group "default" {
  targets = ["gateway", "nlp-cpu", "vision-cpu", "embeddings-cpu", "training-cpu"]
}

group "gpu" {
  targets = ["nlp-gpu", "vision-gpu", "embeddings-gpu", "training-gpu"]
}

target "_common" {
  context    = "."
  dockerfile = "deploy/docker/Dockerfile"
}

target "gateway" {
  inherits = ["_common"]
  target   = "gateway"
  tags     = ["${REGISTRY}/gateway:${VERSION}"]
}

target "service" {
  name     = "${service}-${device}"
  # training: the training service, and the image of its Kubernetes Jobs (LUMEN_TRAINING_KUBERNETES_IMAGE).
  matrix   = { service = ["nlp", "vision", "embeddings", "training"], device = ["cpu", "gpu"] }
  inherits = ["_common"]
  target   = "service"
  args     = { SERVICE = service, DEVICE = device }
  tags     = ["${REGISTRY}/${service}:${VERSION}-${device}"]
}
