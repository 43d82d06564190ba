"""bramble: a small Kubernetes-shaped cluster for stacks of Raspberry Pis."""

__version__ = "0.1.0"

# The Kubernetes API version bramble speaks (reported by /version; kubectl compares minors).
KUBE_MAJOR = "1"
KUBE_MINOR = "30"
