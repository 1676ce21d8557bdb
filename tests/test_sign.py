"""Sign-avatar motion: skeleton, procedural signs, the motion diffusion model, its SDS, metrics, rendering."""

import numpy as np
import pytest
import torch

from genkit.data.signs import (
    FEATURES,
    FRAMES,
    GLOSSES,
    LOCATIONS,
    SIGNS,
    from_features,
    motion_joints,
    parse_sentence,
    sentence_motion,
    sentences,
    to_features,
)
from genkit.data.skeleton import (
    JOINTS,
    NUM_JOINTS,
    PARENTS,
    axis_angle_to_matrix,
    forward_kinematics,
    load_smplx_npz,
    matrix_to_axis_angle,
    save_smplx_npz,
)
from genkit.utils import GenkitError


def test_skeleton_layout_and_kinematics():
    assert (
        NUM_JOINTS == 55
        and JOINTS[22] == "jaw"
        and JOINTS[25] == "left_index1"
        and JOINTS[54] == "right_thumb3"
    )
    assert all(p < c for c, p in enumerate(PARENTS) if p >= 0) and PARENTS[0] == -1
    pos, _ = forward_kinematics(axis_angle_to_matrix(torch.zeros(55, 3)))
    lw, rw = pos[JOINTS.index("left_wrist")], pos[JOINTS.index("right_wrist")]
    assert torch.allclose(lw * torch.tensor([-1, 1, 1]), rw) and float(lw[0]) > 0.5  # T-pose, mirrored
    # bending the left elbow by 90 degrees about y swings the forearm (0.25 m) from +x to -z
    pose = torch.zeros(55, 3)
    pose[JOINTS.index("left_elbow"), 1] = torch.pi / 2
    bent, _ = forward_kinematics(axis_angle_to_matrix(pose))
    elbow = pos[JOINTS.index("left_elbow")]
    torch.testing.assert_close(
        bent[JOINTS.index("left_wrist")], elbow + torch.tensor([0.0, 0.0, -0.25]), atol=1e-5, rtol=0
    )
    aa = torch.randn(200, 3) * 1.2
    torch.testing.assert_close(
        axis_angle_to_matrix(matrix_to_axis_angle(axis_angle_to_matrix(aa))),
        axis_angle_to_matrix(aa),
        atol=1e-5,
        rtol=0,
    )


def test_smplx_npz_round_trip_and_refusals(tmp_path):
    pose, expr = sentence_motion(("hello", "yes", "house"))
    path = save_smplx_npz(tmp_path / "m.npz", pose, expr)
    data = np.load(path)
    assert data["body_pose"].shape == (FRAMES, 63) and data["left_hand_pose"].shape == (FRAMES, 45)
    assert data["expression"].shape == (FRAMES, 10) and data["betas"].shape == (10,)
    back = load_smplx_npz(path)
    torch.testing.assert_close(back["pose"], pose)
    torch.testing.assert_close(back["expression"], expr)
    (tmp_path / "bad.npz").write_text("not a zip")
    with pytest.raises(GenkitError, match="is not an SMPL-X npz"):
        load_smplx_npz(tmp_path / "bad.npz")


def test_signs_reach_their_location_and_sentences_split():
    train, held = sentences("train"), sentences("heldout")
    assert len(held) == len(sentences("all")) // 10 and not set(train) & set(held)
    assert {g for s in train for g in s} == set(GLOSSES)  # every sign is seen in training
    pose, expr = sentence_motion(("book", "yes", "good"))  # book: a two-handed hold in the space
    pos = motion_joints(to_features(pose, expr))
    wrist = pos[:, JOINTS.index("right_wrist")]
    mid = 10  # a frame after the transition of the first sign
    assert float((wrist[mid] - torch.tensor(LOCATIONS["space"])).norm()) < 0.02
    left = pos[mid, JOINTS.index("left_wrist")]
    assert float((left - wrist[mid] * torch.tensor([-1.0, 1.0, 1.0])).norm()) < 0.02  # mirrored
    # a fist curls the fingers: the right index tip comes closer to the wrist than in a flat hand
    fist = pose[20:30]  # "yes" is a fist
    tip = motion_joints(to_features(fist, expr[20:30]))[:, JOINTS.index("right_index3")]
    flat_tip = pos[mid, JOINTS.index("right_index3")]
    assert float(
        (tip - motion_joints(to_features(fist, expr[20:30]))[:, JOINTS.index("right_wrist")])
        .norm(dim=-1)
        .max()
    ) < float((flat_tip - wrist[mid]).norm())
    assert torch.equal(sentence_motion(("book", "yes", "good"))[0], pose)  # canonical motion is deterministic
    x = to_features(pose, expr)
    assert x.shape == (FRAMES, FEATURES)
    torch.testing.assert_close(to_features(*from_features(x)), x, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="unknown sign"):
        parse_sentence("hello teapot house")
    with pytest.raises(ValueError, match="3 signs"):
        parse_sentence("hello house")
    assert len({(s.handshape, s.location, s.movement, s.two_handed, s.nonmanual) for s in SIGNS}) == len(
        SIGNS
    )


def test_avatar_renders_the_body_and_the_face_moves():
    from genkit.render.sign_avatar import body_mesh, render_motion

    mesh = body_mesh()
    pose, expr = sentence_motion(("hello", "yes", "house"))
    frames = render_motion(pose[:2], expr[:2], 64, mesh)
    assert frames.shape == (2, 64, 64, 3) and frames.dtype == np.uint8
    body = (np.abs(frames.astype(int) - 240).sum(-1) > 30).mean()
    assert 0.1 < body < 0.6
    raised = expr[:1].clone()
    raised[:, 0] = 3.0  # brows up
    a = render_motion(pose[:1], expr[:1] * 0, 128, mesh)
    b = render_motion(pose[:1], raised, 128, mesh)
    changed = np.argwhere(np.abs(a.astype(int) - b.astype(int)).sum(-1) > 0)
    assert len(changed) > 0 and changed[:, 1].max() < 40  # only pixels on the face change


@pytest.fixture(scope="module")
def sign_model(tmp_path_factory):
    from genkit.training.sign import SignTrainConfig, train_sign

    out = tmp_path_factory.mktemp("sign")
    cfg = SignTrainConfig(
        out=str(out),
        max_train_steps=6,
        num_train_motions=48,
        batch_size=8,
        hidden=32,
        layers=1,
        checkpointing_steps=3,
    )
    return train_sign(cfg)


def test_sign_pipeline_loads_and_is_seeded(sign_model):
    from genkit.pipelines.sign.system import load_sign_pipeline

    pipe = load_sign_pipeline(str(sign_model))
    a = pipe(["hello thanks house"], 3, 2.0, generator=torch.Generator().manual_seed(0))
    b = pipe(["hello thanks house"], 3, 2.0, generator=torch.Generator().manual_seed(0))
    c = pipe(["hello thanks house"], 3, 2.0, generator=torch.Generator().manual_seed(1))
    assert a.pose.shape == (1, FRAMES, 55, 3) and a.expression.shape == (1, FRAMES, 10)
    torch.testing.assert_close(a.motion, b.motion)
    assert not torch.allclose(a.motion, c.motion)
    # the saved normalisation is the training pool's: constant leg rotations have std at the floor
    assert float(pipe.model.feature_std.min()) == pytest.approx(1e-3)
    with pytest.raises(GenkitError, match="not a bundled sign model"):
        load_sign_pipeline(str(sign_model.parent / "nothing"))


def test_sign_training_resumes(sign_model):
    from genkit.training.loop import latest_checkpoint

    assert latest_checkpoint(sign_model.parent)[1] == 6


def test_graph_encoder_follows_the_skeleton():
    from genkit.models.sign_motion import skeleton_adjacency

    a = skeleton_adjacency(list(PARENTS))
    elbow, wrist, knee = JOINTS.index("left_elbow"), JOINTS.index("left_wrist"), JOINTS.index("left_knee")
    assert a[elbow, wrist] > 0 and a[wrist, elbow] == a[elbow, wrist] and a[elbow, knee] == 0
    assert torch.allclose(a, a.T)


def test_genkit_sign_writes_video_npz_and_refuses_bad_input(sign_model, tmp_path, capsys):
    from genkit.cli import main

    out = tmp_path / "clip.mp4"
    args = [
        "sign",
        "hello thanks house",
        "--model",
        str(sign_model),
        "--out",
        str(out),
        "--steps",
        "2",
        "--size",
        "64",
    ]
    assert main(args) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert out.stat().st_size > 0 and load_smplx_npz(out.with_suffix(".npz"))["pose"].shape == (FRAMES, 55, 3)
    for bad, msg in (
        (["sign", "hello thanks", "--model", str(sign_model)], "3 signs"),
        (["sign", "hello teapot house", "--model", str(sign_model)], "unknown sign"),
        (["sign", "hello thanks house", "--out", str(tmp_path / "x.avi")], "must end in .mp4 or .gif"),
        (
            [
                "sign",
                "hello thanks house",
                "--model",
                str(tmp_path / "none"),
                "--out",
                str(tmp_path / "y.mp4"),
            ],
            "not a bundled sign model",
        ),
    ):
        assert main(bad) == 2
        assert msg in capsys.readouterr().err
    assert not (tmp_path / "y.mp4").exists()


def test_motion_sds_moves_the_curve_towards_the_prior(sign_model):
    from genkit.pipelines.sign.motion_sds import BezierMotion, bezier_basis, distill_motion, rigidity
    from genkit.pipelines.sign.system import load_sign_pipeline

    basis = bezier_basis(FRAMES, 6)
    torch.testing.assert_close(basis.sum(1), torch.ones(FRAMES))
    x = to_features(*sentence_motion(("hello", "yes", "house")))
    assert float(rigidity(x)) < 1e-8 and float(rigidity(x * 1.5)) > 0.1
    curve = BezierMotion(x, 8)
    assert float((curve().detach() - x).abs().mean()) < 0.02  # the least-squares fit follows the motion
    pipe = load_sign_pipeline(str(sign_model))
    a = distill_motion(pipe, "hello yes house", steps=4, seed=0, progress=False)
    b = distill_motion(pipe, "hello yes house", steps=4, seed=0, progress=False)
    assert a.shape == (FRAMES, FEATURES) and torch.isfinite(a).all()
    torch.testing.assert_close(a, b, atol=1e-3, rtol=0)  # seeded (Adam amplifies float noise a little)
    start = pipe.model.feature_mean.expand(FRAMES, -1)
    assert float((a - start).abs().max()) > 1e-3  # the optimisation moved it


def test_sign_metrics_on_known_motions(tmp_path):
    from genkit.metrics.sign import (
        back_translation,
        canonical_motions,
        dtw_mje,
        evaluator_inputs,
        load_sign_evaluator,
        mpjpe,
        r_precision,
    )
    from genkit.training.sign_evaluator import SignEvaluatorTrainConfig, train_sign_evaluator

    caps = ["hello yes house", "water think go"]
    truth = canonical_motions(caps)
    assert mpjpe(truth, truth) == {"body": 0.0, "hands": 0.0}
    # the same motion two frames late: DTW forgives the delay, frame-by-frame MPJPE does not
    late = torch.cat([truth[:, :1].expand(-1, 2, -1), truth[:, :-2]], 1)
    assert dtw_mje(late, truth)["body"] < 0.5 * mpjpe(late, truth)["body"]
    assert mpjpe(truth[[1, 0]], truth)["hands"] > 5.0
    out = train_sign_evaluator(
        SignEvaluatorTrainConfig(
            out=str(tmp_path / "ev"), max_train_steps=3, num_train_motions=32, batch_size=8
        )
    )
    ev = load_sign_evaluator(str(out))
    inputs = evaluator_inputs(truth)
    assert inputs.shape == (2, FRAMES, 55 * 3 + 10)
    acc = back_translation(ev, inputs, caps)
    assert acc == float(
        (
            ev.classify_signs(inputs).argmax(-1)
            == torch.tensor([[GLOSSES.index(w) for w in c.split()] for c in caps])
        )
        .float()
        .mean()
    )
    top = r_precision(ev, ev.embed_motion(inputs).detach(), caps)
    assert len(top) == 3 and top[0] <= top[1] <= top[2] <= 1.0
    # an evaluator whose text embedding is the motion's: R-precision is perfect
    emb = ev.embed_text(torch.tensor([[GLOSSES.index(w) for w in c.split()] for c in caps])).detach()
    assert r_precision(ev, emb, caps) == [1.0, 1.0, 1.0]


def test_bundled_sign_model_signs_a_held_out_sentence():
    """The shipped sign-motion model on a sentence it never saw, read by the shipped evaluator."""
    from genkit.metrics.sign import (
        back_translation,
        canonical_motions,
        evaluator_inputs,
        load_sign_evaluator,
        mpjpe,
    )
    from genkit.pipelines.sign.system import load_sign_pipeline

    caps = [" ".join(s) for s in sentences("heldout")[:4]]
    pipe = load_sign_pipeline("sign-motion")
    motion = pipe(caps, 10, 2.5, generator=torch.Generator().manual_seed(0)).motion
    err = mpjpe(motion, canonical_motions(caps))
    assert err["body"] < 15 and err["hands"] < 30  # mm; a wrong sentence is about 30 / 70
    assert back_translation(load_sign_evaluator(), evaluator_inputs(motion), caps) >= 0.9
