"""Shared by the PyTorch benchmarks (resnet50.py, torch_train_step.py): torch with a CUDA device."""


def cuda_torch():
    """torch, when it imports and sees a CUDA device; else None, after printing the SKIP line that
    the scripts' callers look for (the scripts then exit 77)."""
    try:
        import torch
    except Exception as e:  # noqa: BLE001
        print(f"SKIP torch not importable: {e}")
        return None
    if not torch.cuda.is_available():
        print("SKIP no CUDA device visible to torch")
        return None
    return torch
