"""Writes tests/golden/tfevents/scalars.json: the TFRecord bytes TensorBoard's
own writer (torch.utils.tensorboard.SummaryWriter, which transformers'
TensorBoardCallback uses) produces for fixed scalars; tests/lua/test_tfevents.lua
compares lfl's records with them. wall_time is the clock's, so each event is
re-serialized with a fixed wall_time and framed by tensorboard's RecordWriter.

With a path argument it instead reads an lfl-written event file (or a
directory of them) with tensorboard's EventAccumulator and prints its scalars
as JSON (a check by hand that TensorBoard reads what lfl writes).

Run by hand:  $(bash tests/ref/venv.sh tensorboard) tests/ref/make_tfevents_goldens.py [events-file]
"""
import glob
import io
import json
import math
import os
import pathlib
import sys
import tempfile

WALL = 1700000000.25


def read_lfl(path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(path)
    acc.Reload()
    out = {tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    print(json.dumps(out, indent=1, sort_keys=True))


def main():
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter
    from torch.utils.tensorboard import SummaryWriter

    scalars = [
        ("train/loss", 2.3456789, 1),
        ("train/learning_rate", 3e-05, 2),
        ("train/grad_norm", 0.0, 0),
        ("train/epoch", 0.3333333333333333, 3),
        ("eval/loss", -1.5, 2 ** 40),
        ("eval/runtime", 1e-30, 300),
        ("t" * 130 + "/long", 7.0, 127),
        ("train/överflow", "inf", 128),
        ("train/nan", "nan", 5),
    ]
    with tempfile.TemporaryDirectory() as d:
        w = SummaryWriter(log_dir=d)
        for tag, v, step in scalars:
            w.add_scalar(tag, float(v), step)
        w.close()
        (path,) = glob.glob(os.path.join(d, "events.out.tfevents.*"))
        raws = list(RawEventFileLoader(path).Load())

    def framed(raw):
        ev = event_pb2.Event.FromString(raw)
        ev.wall_time = WALL
        buf = io.BytesIO()
        RecordWriter(buf).write(ev.SerializeToString())
        return ev, buf.getvalue().hex()

    ev0, hex0 = framed(raws[0])
    golden = {"wall_time": WALL, "version": {"file_version": ev0.file_version,
                                             "writer": ev0.source_metadata.writer, "hex": hex0},
              "scalars": []}
    assert len(raws) == 1 + len(scalars)
    for (tag, v, step), raw in zip(scalars, raws[1:]):
        ev, h = framed(raw)
        assert ev.summary.value[0].tag == tag and ev.step == step
        golden["scalars"].append({"tag": tag, "value": v, "step": step, "hex": h})
    out = pathlib.Path(__file__).resolve().parents[1] / "golden" / "tfevents"
    out.mkdir(parents=True, exist_ok=True)
    (out / "scalars.json").write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n")
    print("wrote", out / "scalars.json")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        read_lfl(sys.argv[1])
    else:
        main()
