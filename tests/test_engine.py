from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from recognizer.models.engine import Recognizer, RecognizerConfig, choose_device
from recognizer.types import Reading

SIDE = 20


def paint_number(text: str, x0: int, y0: int, image: np.ndarray) -> list[list[float]]:
    """Paint each digit as a square whose grey level encodes it (20 * d + 10); return boxes."""
    boxes = []
    for k, ch in enumerate(text):
        x = x0 + k * (SIDE + 4)
        image[y0 : y0 + SIDE, x : x + SIDE] = 20 * int(ch) + 10
        boxes.append([x, y0, x + SIDE, y0 + SIDE])
    return boxes


class FakeDetector(nn.Module):
    """Returns the painted boxes of each frame (found by looking for non-black pixels)."""

    def __init__(self, boxes_per_frame):
        super().__init__()
        self.boxes_per_frame = boxes_per_frame
        self.calls = 0
        self.anchor = nn.Parameter(torch.zeros(1))

    def forward(self, images):
        self.calls += 1
        out = []
        for i, _img in enumerate(images):
            boxes = torch.tensor(self.boxes_per_frame[i], dtype=torch.float32).reshape(-1, 4)
            # one extra low-score box that the threshold must drop
            junk = torch.tensor([[0.0, 0.0, 5.0, 5.0]])
            out.append(
                {
                    "boxes": torch.cat([boxes, junk]),
                    "scores": torch.cat([torch.full((len(boxes),), 0.9), torch.tensor([0.1])]),
                    "labels": torch.ones(len(boxes) + 1, dtype=torch.int64),
                }
            )
        return out


class GreyReader(nn.Module):
    """Reads the digit back from the crop's grey level."""

    def __init__(self):
        super().__init__()
        self.calls = 0
        self.batch_sizes = []
        self.anchor = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        self.calls += 1
        self.batch_sizes.append(len(x))
        grey = x.mean(dim=(1, 2, 3)) * 255  # crops come in as RGB in [0, 1]
        digit = ((grey - 10) / 20).round().clamp(0, 9).long()
        return torch.nn.functional.one_hot(digit, 10).float() * 10


def test_engine_reads_painted_numbers_in_one_batched_call_each():
    texts = ["42", "1907", "", "8"]
    frames, boxes = [], []
    for i, t in enumerate(texts):
        img = np.zeros((90 + 10 * i, 160, 3), np.uint8)
        boxes.append(paint_number(t, 12 + i, 30, img))
        frames.append(img)
    det, clf = FakeDetector(boxes), GreyReader()
    rec = Recognizer(det, clf, device="cpu", config=RecognizerConfig(det_score_thresh=0.5, tta=False))
    results, timings = rec.recognize_timed(frames)
    assert [[r.text for r in rs] for rs in results] == [["42"], ["1907"], [], ["8"]]
    assert det.calls == 1 and clf.calls == 1
    assert clf.batch_sizes == [2 + 4 + 0 + 1]
    assert set(timings) == {"detect", "classify", "compose"} and all(v >= 0 for v in timings.values())
    r = results[1][0]
    assert isinstance(r, Reading) and r.box == (13.0, 30.0, 13.0 + 3 * 24 + SIDE, 50.0)


def test_engine_min_digit_score_drops_unsure_digits():
    img = np.zeros((60, 100, 3), np.uint8)
    boxes = paint_number("35", 10, 10, img)

    class Unsure(GreyReader):
        def forward(self, x):
            return torch.zeros(len(x), 10)  # 10% each

    rec = Recognizer(FakeDetector([boxes]), Unsure(), device="cpu", config=RecognizerConfig(min_digit_score=0.5))
    assert rec.recognize([img]) == [[]]


def test_engine_with_tiny_untrained_models(tiny_checkpoints):
    rec = Recognizer.from_checkpoints(
        tiny_checkpoints["detector"], tiny_checkpoints["classifier"], device="cpu", config=RecognizerConfig(det_score_thresh=0.0)
    )
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for h, w in [(120, 160), (96, 200), (140, 140)]]
    results = rec.recognize(frames)
    assert len(results) == 3
    for frame, readings in zip(frames, results):
        for r in readings:
            assert r.text.isdigit() and 0.0 <= r.confidence <= 1.0
            for d in r.digits:
                x1, y1, x2, y2 = d.box
                assert -1 <= x1 < x2 <= frame.shape[1] + 1 and -1 <= y1 < y2 <= frame.shape[0] + 1
    assert rec.recognize([]) == []


@pytest.mark.parametrize(
    "frame, match",
    [
        (np.zeros((10, 10), np.uint8), "expected \\(H, W, 3\\)"),
        (np.zeros((10, 10, 3), np.float32), "expected uint8"),
        (np.zeros((0, 10, 3), np.uint8), "expected \\(H, W, 3\\)"),
    ],
)
def test_engine_rejects_bad_frames(frame, match):
    rec = Recognizer(FakeDetector([[]]), GreyReader(), device="cpu")
    with pytest.raises(ValueError, match=match):
        rec.recognize([frame])


def test_config_and_device_validation():
    with pytest.raises(ValueError, match="det_score_thresh=1.5"):
        RecognizerConfig(det_score_thresh=1.5)
    assert choose_device("cpu").type == "cpu"
    assert choose_device(None).type in {"cpu", "cuda"}
    with pytest.raises(ValueError, match="not a torch device"):
        choose_device("toaster")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            choose_device("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_engine_on_cuda_fp16(tiny_checkpoints):
    rec = Recognizer.from_checkpoints(tiny_checkpoints["detector"], tiny_checkpoints["classifier"], device="cuda")
    frames = [np.zeros((120, 160, 3), np.uint8)] * 2
    assert len(rec.recognize(frames)) == 2


def test_detector_file_carries_its_tuned_threshold(tmp_path, tiny_checkpoints):
    from recognizer.models import load_checkpoint, save_checkpoint

    det = load_checkpoint(tiny_checkpoints["detector"])
    tuned = save_checkpoint(tmp_path / "det.pt", det.model, metadata={"score_thresh": 0.85})
    rec = Recognizer.from_checkpoints(tuned, tiny_checkpoints["classifier"], device="cpu")
    assert rec.config.det_score_thresh == 0.85
    # an explicit config wins; a file without the key gets the default
    rec = Recognizer.from_checkpoints(tuned, tiny_checkpoints["classifier"], device="cpu", config=RecognizerConfig(det_score_thresh=0.3))
    assert rec.config.det_score_thresh == 0.3
    rec = Recognizer.from_checkpoints(tiny_checkpoints["detector"], tiny_checkpoints["classifier"], device="cpu")
    assert rec.config.det_score_thresh == RecognizerConfig().det_score_thresh


class GreyReaderWithNotDigit(GreyReader):
    """11 classes: a bright crop (grey level >= 200, i.e. "digit" 9+) is "not a digit"."""

    def forward(self, x):
        grey = x.mean(dim=(1, 2, 3)) * 255
        logits = torch.zeros(len(x), 11)
        digit = ((grey - 10) / 20).round().clamp(0, 9).long()
        logits[torch.arange(len(x)), digit] = 5.0
        logits[grey >= 185, 10] = 10.0  # the "not a digit" class wins for the brightest squares
        return logits


def test_engine_drops_detections_the_classifier_calls_not_a_digit():
    img = np.zeros((60, 160, 3), np.uint8)
    boxes = paint_number("359", 10, 10, img)
    rec = Recognizer(FakeDetector([boxes]), GreyReaderWithNotDigit(), device="cpu")
    (readings,) = rec.recognize([img])
    # the bright square (a door edge, say) is dropped
    assert [r.text for r in readings] == ["35"]
    digits, probs, not_digit = rec.classify_full(np.stack([np.full((32, 32, 3), v, np.uint8) for v in (70, 190)]))
    assert digits.tolist() == [3, 9]
    assert not_digit[0] < 0.01 and not_digit[1] > 0.99
    # a digit's probability is given that the crop is a digit: renormalised over the ten digits
    # (the full softmax gave the bright square's 9 under 0.01; over the digits it is e^5 / (e^5 + 9))
    assert probs[1] == pytest.approx(np.exp(5) / (np.exp(5) + 9), rel=1e-4)
    assert probs[0] == pytest.approx(np.exp(5) / (np.exp(5) + 9), rel=1e-4)
    # not_digit_thresh=1.0 keeps every detection
    keep_all = Recognizer(FakeDetector([boxes]), GreyReaderWithNotDigit(), device="cpu",
                          config=RecognizerConfig(not_digit_thresh=1.0))
    assert [r.text for r in keep_all.recognize([img])[0]] == ["359"]


def test_ten_class_classifier_reports_zero_not_digit_probability():
    rec = Recognizer(FakeDetector([[]]), GreyReader(), device="cpu", config=RecognizerConfig(not_digit_thresh=0.0))
    digits, _, not_digit = rec.classify_full(np.full((2, 32, 32, 3), 50, np.uint8))
    assert digits.tolist() == [2, 2] and not_digit.tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="not_digit_thresh"):
        RecognizerConfig(not_digit_thresh=1.5)


def test_test_time_views_are_one_classifier_call_averaged_in_log_space():
    from recognizer.models.preprocess import TTA_VIEWS, crop_views

    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    views = crop_views(crops)
    assert views.shape == (len(TTA_VIEWS) * 3, 32, 32, 3) and views.dtype == np.uint8
    assert np.array_equal(views[:3], crops)  # the first view is the crop itself
    assert not np.array_equal(views[3:6], crops)  # a shifted view differs

    torch.manual_seed(0)
    from recognizer.models import SmallCNN

    clf = SmallCNN(num_classes=11, channels=(4, 8, 8)).eval()
    calls = []
    clf.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    rec = Recognizer(FakeDetector([[]]), clf, device="cpu")
    digits, probs, not_digit = rec.classify_full(crops)
    assert calls == [len(TTA_VIEWS) * 3]
    from recognizer.models.preprocess import crops_to_tensor

    with torch.no_grad():
        logp = torch.log_softmax(clf(crops_to_tensor(views)), 1).reshape(len(TTA_VIEWS), 3, 11).mean(0)
    expected = torch.softmax(logp, 1)
    assert np.allclose(probs, (expected[:, :10].max(1).values / (1 - expected[:, 10])).numpy(), atol=1e-5)
    assert np.allclose(not_digit, expected[:, 10].numpy(), atol=1e-5)
    assert digits.tolist() == expected[:, :10].argmax(1).tolist()
    # tta=False: one view, the plain softmax
    plain = Recognizer(FakeDetector([[]]), clf, device="cpu", config=RecognizerConfig(tta=False))
    _, p1, _ = plain.classify_full(crops)
    with torch.no_grad():
        sm = torch.softmax(clf(crops_to_tensor(crops)), 1)
        direct = (sm[:, :10].max(1).values / (1 - sm[:, 10])).numpy()
    assert np.allclose(p1, direct, atol=1e-5)


def test_recognize_timed_returns_the_timings_of_its_own_call():
    import threading
    import time

    texts = ["42", "8"]
    frames, boxes = [], []
    for t in texts:
        img = np.zeros((60, 120, 3), np.uint8)
        boxes.append(paint_number(t, 10, 10, img))
        frames.append(img)

    class SlowFirstFrame(FakeDetector):
        """Takes 0.3 s for a batch whose first frame is ``frames[0]``."""

        def forward(self, images):
            if images[0].shape[1] == 60:  # (3, H, W): the first frame's height
                time.sleep(0.3)
            return super().forward(images)

    rec = Recognizer(SlowFirstFrame(boxes), GreyReader(), device="cpu", config=RecognizerConfig(tta=False))
    assert rec.recognize(frames) == rec.recognize_timed(frames)[0]
    assert not hasattr(rec, "last_timings")
    assert rec.recognize_timed([]) == ([], {"detect": 0.0, "classify": 0.0, "compose": 0.0})
    # two threads sharing the recognizer: each gets its own call's timings
    slow_fast = [frames[0], np.zeros((70, 120, 3), np.uint8)]
    got = {}

    def run(name, images):
        got[name] = rec.recognize_timed(images)

    threads = [threading.Thread(target=run, args=("slow", [slow_fast[0]])),
               threading.Thread(target=run, args=("fast", [slow_fast[1]]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got["slow"][1]["detect"] >= 0.3 > got["fast"][1]["detect"]
    assert [r.text for r in got["slow"][0][0]] == ["42"] and len(got["fast"][0]) == 1


def test_choose_device_reads_names_like_the_training_tools(monkeypatch):
    assert choose_device(" CPU ") == torch.device("cpu")
    assert choose_device("").type in {"cpu", "cuda"}  # empty: auto
    assert choose_device(torch.device("cpu")) == torch.device("cpu")
    for bad in ("gpu", "cuda:x", "cuda:-1"):
        with pytest.raises(ValueError, match="not a torch device"):
            choose_device(bad)
    with pytest.raises(ValueError, match="holds no data"):
        choose_device("meta")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert choose_device("auto", local_rank=1) == torch.device("cpu")
    for name in ("cuda", "cuda:0", "CUDA:1"):
        with pytest.raises(ValueError, match="CUDA is not available"):
            choose_device(name)
    # a machine with two GPUs (no tensor is made on them here)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert choose_device("auto") == torch.device("cuda")
    assert choose_device("cuda") == torch.device("cuda")
    assert choose_device("cuda:1") == torch.device("cuda", 1)
    assert choose_device("auto", local_rank=1) == torch.device("cuda", 1)
    assert choose_device("cuda", local_rank=0) == torch.device("cuda", 0)
    assert choose_device("cuda:0", local_rank=1) == torch.device("cuda", 0)  # an explicit index wins
    with pytest.raises(ValueError, match="no CUDA device 2 here"):
        choose_device("cuda:2")
    with pytest.raises(ValueError, match="no CUDA device 3 here"):
        choose_device("cuda", local_rank=3)
