"""python -m oval.doctor on a machine without a GPU: every CPU path checks out, the GPU paths are
reported unavailable with a reason, and the report is written."""
import json

import torch

from oval.doctor import fps_probe, main as doctor_main


def test_doctor_runs_on_the_cpu_and_names_what_is_missing(tmp_path, capsys):
    report_path = tmp_path / "doctor.json"
    rc = doctor_main(["--skip-fps", "--json", str(report_path), "--model", "default"])
    report = json.loads(report_path.read_text())
    assert rc == 0 and report["summary"]["failed"] == 0
    checks = {c["check"]: c for c in report["checks"]}
    goldens = [c for name, c in checks.items() if name.startswith("golden ")]
    # On the CPU kind that recorded the hashes the frames are identical; on another, within rounding.
    assert goldens and all(c["status"] == "ok" and (c["identical_frames"] or c.get("within_rounding"))
                           for c in goldens if "cpu" in c["check"])
    assert any("encoded on cpu, decoded on cpu" in name for name in checks)
    env = report["environment"]
    assert env["coding_math"]["cuda_matmul_tf32"] is False and "cpu_threads" in env
    if not torch.cuda.is_available():
        assert env["cuda"] is False and env["cuda_reason"]
        for name in ("CuPy kernels", "CUDA training step"):
            assert checks[name]["status"] == "unavailable" and checks[name]["reason"]
    assert "ok," in capsys.readouterr().err


def test_fps_probe_times_the_cpu_without_touching_cuda():
    # The probe's clock waits on the device only where it is CUDA; on a CPU-only build a CUDA call
    # would raise here.
    results = fps_probe("default", width=128, height=128, repeats=1)
    cpu = [r for r in results if r["check"].endswith("on cpu")]
    assert len(cpu) == 1 and cpu[0]["status"] == "ok" and cpu[0]["ms_per_frame"] > 0
