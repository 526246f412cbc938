from dataclasses import replace

import numpy as np
import pytest

from models.avatar import landmarks
from models.avatar.controls import TONGUE_TOUCH, Controls, MotionConfig, Segment, blinks, build_controls
from models.avatar.images import load_image
from models.avatar.portrait import PortraitRenderer
from models.avatar.visemes import viseme
from models.avatar.warp import Pose
from models.errors import InvalidInput, NoFaceFound

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def renderer(tmp_path_factory):
    return PortraitRenderer(size=256, backend="cv2", cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def avatar(renderer, portrait_rgb):
    return renderer.prepare(portrait_rgb)


def _controls(n, jaw=0.0, wide=0.0, blink=0.0):
    return Controls(np.full(n, jaw), np.full(n, wide), np.full(n, blink), np.zeros((n, 4)))


def _frame(renderer, avatar, **pose):
    c = _controls(1, **pose)
    return next(renderer.frames(avatar, c)).astype(np.int16)


def _mouth_box(avatar):
    p = avatar.portrait.points
    lips = p[landmarks.LIPS_UPPER_OUTER + landmarks.LIPS_LOWER_OUTER]
    (x0, y0), (x1, y1) = lips.min(0).astype(int), lips.max(0).astype(int)
    return slice(y0, y1 + 1), slice(x0, x1 + 1)


def test_landmarks_found_once_and_cached(renderer, portrait_rgb, monkeypatch, tmp_path):
    points = landmarks.cached_landmarks(portrait_rgb, tmp_path)
    assert points.shape == (468, 2)
    assert len(list(tmp_path.glob("*.npy"))) == 1

    def fail(_):
        raise AssertionError("detector called on a cache hit")

    monkeypatch.setattr(landmarks, "detect_landmarks", fail)
    np.testing.assert_array_equal(landmarks.cached_landmarks(portrait_rgb, tmp_path), points)


def test_image_without_face_is_rejected(renderer):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (300, 300, 3), dtype=np.uint8)
    with pytest.raises(NoFaceFound) as err:
        renderer.prepare(noise)
    assert err.value.status == 422 and "face" in err.value.message


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 40])
def test_non_image_is_rejected(data):
    with pytest.raises(InvalidInput) as err:
        load_image(data)
    assert "png" in err.value.allowed


def test_tiny_image_is_rejected():
    import cv2

    ok, png = cv2.imencode(".png", np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(InvalidInput, match="smaller"):
        load_image(png.tobytes())


def test_large_non_square_photo_is_cropped_around_the_face(renderer, portrait_rgb):
    canvas = np.full((900, 1600, 3), 200, np.uint8)
    canvas[300:812, 900:1412] = portrait_rgb
    avatar = renderer.prepare(canvas)
    p = avatar.portrait
    assert p.image.shape == (256, 256, 3)
    assert p.face_size / p.size > 0.35  # the face fills a good part of the frame
    centre = p.points[landmarks.NOSE_TIP]
    assert 0.3 * 256 < centre[0] < 0.7 * 256


def test_mouth_opens_with_the_jaw_and_nothing_else_moves(renderer, avatar):
    closed, opened = _frame(renderer, avatar, jaw=0.0), _frame(renderer, avatar, jaw=1.0)
    ys, xs = _mouth_box(avatar)
    assert np.abs(opened[ys, xs] - closed[ys, xs]).mean() > 15
    x0, y0, x1, y1 = avatar.portrait.eyes[0].roi
    assert np.abs(opened[:, : xs.start - 40] - closed[:, : xs.start - 40]).max() == 0
    # the opened mouth is dark inside (the drawn cavity, below the photo's upper teeth); the closed one has only
    # the thin crease where its lips meet
    x = int(avatar.portrait.mouth.frame.origin[0])
    dark_opened, dark_closed = ((f[ys, x].mean(1) < 90).sum() for f in (opened, closed))
    assert dark_opened >= dark_closed + 3


def test_wide_and_round_shapes_differ(renderer, avatar):
    ys, xs = _mouth_box(avatar)
    wide, rnd = _frame(renderer, avatar, jaw=0.5, wide=1.0), _frame(renderer, avatar, jaw=0.5, wide=-1.0)
    assert np.abs(wide[ys, xs] - rnd[ys, xs]).mean() > 5


def test_blink_closes_the_eyes(renderer, avatar):
    open_, shut = _frame(renderer, avatar), _frame(renderer, avatar, blink=1.0)
    for eye in avatar.portrait.eyes:
        x0, y0, x1, y1 = eye.roi
        assert np.abs(shut[y0:y1, x0:x1] - open_[y0:y1, x0:x1]).mean() > 3


def test_visemes():
    assert viseme("m") == (0.0, 0.0) and viseme("p") == (0.0, 0.0)
    assert viseme("a")[0] > 0.8  # open
    assert viseme("u")[1] < -0.5 and viseme("o")[1] < -0.5  # rounded
    assert viseme("i")[1] > 0.5  # spread
    assert viseme("ˈ") is None and viseme(" ") is None


def _plan(segments, seconds, fps=25, rest=0.0):
    n = int(seconds * fps)
    return build_controls(n, fps, np.full(n, 0.1, np.float32), segments, MotionConfig(), rest)


def test_lips_close_on_bilabials_even_when_short():
    # "a m a": a 23 ms 'm' between open vowels must shut the lips on its frame
    segs = [Segment("a", 0.0, 0.5), Segment("m", 0.5, 0.023), Segment("a", 0.523, 0.5)]
    c = _plan(segs, 1.1)
    assert c.jaw[int(0.51 * 25)] < 0.05
    assert c.jaw[5] > 0.7 and c.jaw[20] > 0.6


def test_a_bilabial_that_only_touches_a_frame_leaves_that_frame_open():
    # the 'm' starts 5 ms before frame 12 ends: frame 12 is still the open vowel's, frame 13 is shut
    segs = [Segment("a", 0.0, 0.515), Segment("m", 0.515, 0.1), Segment("a", 0.615, 0.5)]
    c = _plan(segs, 1.2)
    assert c.jaw[12] > 0.3 and c.jaw[13] < 0.0 and c.jaw[14] < 0.0  # below 0: the lips press


def test_stressed_vowels_open_wider_than_unstressed_ones():
    def jaw_of(symbols):
        segs = [Segment(s, 0.3 * i, 0.3) for i, s in enumerate(symbols)]
        return _plan(segs, 0.3 * len(symbols)).jaw

    espeak = jaw_of(["ˈe", "t", "e", "t", "ˈe"])  # eSpeak writes the mark on the vowel
    assert espeak[3] > espeak[18] + 0.1 and espeak[33] > espeak[18] + 0.1
    piper = jaw_of(["ˈ", "e", "t", "e", "t", "ˈ", "e"])  # Piper gives the mark a span of its own
    assert piper[8] > piper[26] + 0.1
    unmarked = jaw_of(["e", "t", "e", "t", "e"])  # an engine that marks no stress: every vowel as it was
    assert unmarked[18] == pytest.approx(espeak[3], abs=0.02)


def test_mouth_rests_in_silence():
    segs = [Segment("^", 0.0, 1.0), Segment("a", 1.0, 0.3), Segment("$", 1.3, 1.0)]
    c = _plan(segs, 2.3, rest=0.0)
    assert np.all(c.jaw[:20] < 0.02) and np.all(c.jaw[-15:] < 0.02)
    assert c.jaw[28] > 0.5


def test_coarticulation_is_smooth():
    segs = [Segment(s, i * 0.08, 0.08) for i, s in enumerate("hɛloʊwɜːld" * 3)]
    c = _plan(segs, 2.5)
    assert np.abs(np.diff(c.jaw)).max() < 0.6


def test_blinks_every_two_to_six_seconds():
    rng = np.random.default_rng(1)
    track = blinks(25 * 60, 25, MotionConfig(), rng)
    starts = np.flatnonzero((track[1:] > 0) & (track[:-1] == 0))
    assert 10 <= len(starts) <= 31  # 60 s / 6 s .. 60 s / 2 s
    assert np.all(np.diff(starts) >= 2 * 25 - 1)
    assert track.max() == 1.0
    lengths = [np.argmax(track[s + 1 :] == 0) for s in starts[:-1]]
    assert all(3 <= n <= 5 for n in lengths)  # ~150 ms at 25 fps


def test_head_motion_is_subtle_and_smooth():
    env = np.abs(np.sin(np.linspace(0, 20, 250))).astype(np.float32)
    c = build_controls(250, 25, env, None, MotionConfig(), 0.0)
    assert np.abs(c.head[:, 0]).max() < 3.0  # degrees
    assert np.abs(c.head[:, 1:3]).max() < 0.05  # face sizes
    accel = np.abs(np.diff(c.head, 2, axis=0)).max(0)
    assert accel[0] < 0.05 and accel[1:3].max() < 0.002  # no frame-to-frame jitter


def test_energy_fallback_follows_loudness():
    env = np.concatenate([np.zeros(25), np.full(25, 0.3), np.zeros(25)]).astype(np.float32)
    c = build_controls(75, 25, env, None, MotionConfig(), 0.0)
    assert c.jaw[:20].max() < 0.05 and c.jaw[30:45].mean() > 0.5


def test_frame_count_matches_duration(renderer, avatar):
    from models.avatar.base import SpeechTrack

    audio = np.zeros(int(22050 * 1.37), np.float32)
    plan = renderer.plan(avatar, SpeechTrack(audio, 22050, None))
    assert abs(len(plan) - 1.37 * 25) <= 1
    frames = list(renderer.frames(avatar, plan))
    assert len(frames) == len(plan) and frames[0].shape == (256, 256, 3)


def test_torch_backend_matches_cv2(avatar, portrait_rgb):
    pytest.importorskip("torch")
    torch_r = PortraitRenderer(size=256, backend="torch", device="cpu")
    t_avatar = torch_r.prepare(portrait_rgb)
    c = Controls(
        np.array([0.0, 0.8]),
        np.array([0.0, 0.3]),
        np.array([0.0, 1.0]),
        np.array([[0, 0, 0, 0], [2, 0.02, 0.01, 0.01]]),
    )
    cv = PortraitRenderer(size=256, backend="cv2").render_batch([(avatar, c, None)])[0].astype(np.int16)
    tr = torch_r.render_batch([(t_avatar, c, None), (t_avatar, c, range(1, 2))])
    assert len(tr) == 2 and tr[0].shape == cv.shape and len(tr[1]) == 1
    assert np.abs(tr[0].astype(np.int16) - cv).mean() < 1.5


def test_bad_size_and_fps():
    with pytest.raises(InvalidInput, match="size"):
        PortraitRenderer(size=100000)
    with pytest.raises(InvalidInput, match="fps"):
        PortraitRenderer(fps=0)


def test_pose_defaults_are_neutral():
    assert Pose() == Pose(0, 0, 0, 0, 0, 0, 0, 0)


@pytest.mark.gpu
def test_torch_backend_on_the_gpu_matches_cv2(avatar, portrait_rgb):
    from models.device import resolve_device

    device = resolve_device("auto")
    gpu = PortraitRenderer(size=256, backend="torch", device=device)
    c = Controls(np.array([0.2, 0.9]), np.array([0.0, -0.5]), np.array([1.0, 0.0]), np.zeros((2, 4)))
    on_gpu = gpu.render_batch([(gpu.prepare(portrait_rgb), c, None)])[0].astype(np.int16)
    on_cpu = PortraitRenderer(size=256, backend="cv2").render_batch([(avatar, c, None)])[0].astype(np.int16)
    assert np.abs(on_gpu - on_cpu).mean() < 1.5


def test_bilabials_press_the_lips_and_ride_on_the_jaw_column():
    """The press rides on the jaw field (below 0): no column of its own in the rows sent to a remote renderer."""
    segs = [Segment("a", 0.0, 0.4), Segment("m", 0.4, 0.12), Segment("a", 0.52, 0.4)]
    c = _plan(segs, 1.0)
    assert c.jaw[int(0.46 * 25)] < -0.3  # pressed, not just closed
    np.testing.assert_allclose(Controls.from_poses(c.poses()).jaw, c.jaw, atol=1e-4)


def test_tongue_tip_rises_on_l_and_th_not_on_m():
    segs = [Segment("a", 0.0, 0.3), Segment("l", 0.3, 0.1), Segment("a", 0.4, 0.3), Segment("m", 0.7, 0.1)]
    segs += [Segment("a", 0.8, 0.3), Segment("θ", 1.1, 0.1), Segment("a", 1.2, 0.3)]
    c = _plan(segs, 1.5)
    at = lambda t: c.tongue[int(t * 25)]  # noqa: E731
    assert at(0.35) > 0.5  # up to the upper teeth on l
    assert at(0.75) < 0.02 and at(0.1) < 0.02  # down on m and on open vowels (the body shows with the jaw)
    assert at(1.15) > 0.8  # further still on th: forward, between the teeth
    assert 0.5 < at(0.35) <= TONGUE_TOUCH + 1e-6 < at(1.15)  # l touches the upper teeth, never comes forward
    rising = c.tongue[int(0.2 * 25) : int(0.35 * 25) + 1]  # coarticulated like the other tracks: it ramps up
    assert np.all(np.diff(rising) >= 0) and np.any((rising > 0.05) & (rising < 0.45))


def test_poses_have_eight_columns_and_seven_still_parse():
    segs = [Segment("l", 0.0, 0.1), Segment("a", 0.1, 0.3)]
    c = _plan(segs, 0.4)
    rows = c.poses()
    assert all(len(r) == 8 for r in rows) and max(r[7] for r in rows) > 0.5
    back = Controls.from_poses(rows)
    for name in ("jaw", "wide", "blink", "head", "tongue"):
        np.testing.assert_allclose(getattr(back, name), getattr(c, name), atol=1e-4)
    old = Controls.from_poses([r[:7] for r in rows])  # a client made before the tongue
    np.testing.assert_allclose(old.jaw, c.jaw, atol=1e-4)
    assert not old.tongue.any() and old.pose(0) == replace(back.pose(0), tongue=0.0)
    assert len(Controls.from_poses([])) == 0
    for bad in ([[0.0] * 9], [[0.0] * 7, [0.0] * 8]):
        with pytest.raises(ValueError, match="7 or 8"):
            Controls.from_poses(bad)
