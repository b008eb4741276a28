"""How the book names datasets, networks and methods (labels of tables and figures)."""

DATASET_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "fashion_mnist": "Fashion-MNIST", "svhn": "SVHN", "mnist": "MNIST"}
MODEL_LABELS = {"resnet18": "ResNet-18", "densenet_bc": "DenseNet-BC", "lenet5": "LeNet-5"}
PAPER_MODELS = {"cifar10": "resnet18", "cifar100": "resnet18", "fashion_mnist": "densenet_bc", "svhn": "lenet5", "mnist": "densenet_bc"}
#: Each dataset with the paper's network for it, e.g. "Fashion-MNIST (DenseNet-BC)".
DATASET_LABELS = {d: f"{name} ({MODEL_LABELS[PAPER_MODELS[d]]})" for d, name in DATASET_NAMES.items()}
METHOD_LABELS = {"baseline": "Baseline", "mixup": "Mixup", "local": "Local Mixup", "adamixup": "AdaMixup"}
