"""The CUDA paths, run by benchmarks/gpu_check.sh on a machine with a GPU (skipped elsewhere):
batched training, pool predictions and an exported ensemble give on the GPU what they give on
the CPU."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_batched_training_and_export_on_cuda(tmp_path):
    import numpy as np

    from lrensemble import schedules
    from lrensemble.data import load_dataset
    from lrensemble.export import export_ensemble, load_ensemble
    from lrensemble.pool import Pool
    from lrensemble.train import TrainConfig, build_model
    from lrensemble.train.batched import predict_proba_many, train_members

    ds = load_dataset("mnist1d")
    policies = schedules.grid("table1")[:3]
    models = [build_model("cnn1d", ds, seed=0, channels=8) for _ in policies]
    results = train_members(
        models, ds, policies, TrainConfig(epochs=1, device="cuda"), progress=False
    )
    assert [r.status for r in results] == ["complete"] * 3
    assert next(models[0].parameters()).device.type == "cuda"
    gpu = predict_proba_many(models, ds.x_test, 512, torch.device("cuda")).numpy()
    cpu_models = [m.cpu() for m in models]
    cpu = predict_proba_many(cpu_models, ds.x_test, 512, torch.device("cpu")).numpy()
    assert np.allclose(gpu, cpu, atol=1e-4)

    pool = Pool.create(
        tmp_path / "pool",
        {"val": ds.y_val.numpy(), "test": ds.y_test.numpy()},
        ds.num_classes,
        ds.describe(),
    )
    val = predict_proba_many(cpu_models, ds.x_val, 512, torch.device("cpu")).numpy()
    for i, model in enumerate(cpu_models):
        from lrensemble.train.checkpoint import save_weights

        save_weights(model, tmp_path / f"m{i}.safetensors")
        record = {"model": {"name": "cnn1d", "channels": 8}, "dataset": ds.describe()}
        pool.add_member(
            f"m{i}", {"val": val[i], "test": cpu[i]}, record, weights=tmp_path / f"m{i}.safetensors"
        )
    export_ensemble(tmp_path / "pool", tmp_path / "ens")
    on_gpu = load_ensemble(tmp_path / "ens", device="cuda")
    on_cpu = load_ensemble(tmp_path / "ens")
    with torch.no_grad():
        a = on_gpu(ds.x_test.cuda()).cpu().numpy()
        b = on_cpu(ds.x_test).numpy()
    assert np.allclose(a, b, atol=1e-4)
