"""Strategies in the training loop: learning rates per group, freezing on schedule, resume across an
unfreezing step, the BatchNorm policy verified bit for bit, and recipe validation."""

import re

import pytest
import torch
from tests.conftest import make_blobs
from tests.test_engine import _Crash

from protege.config import TrainConfig
from protege.data.dataset import ArrayDataset
from protege.engine import build_optimizer, fit
from protege.errors import ConfigError
from protege.models.builtin import mlp, resnet
from protege.objectives import build_objective
from protege.schedules import build_scheduler
from protege.transfer import STRATEGIES, build_strategy, check_strategy_options


def _ce():
    return build_objective([("ce", {}, 1.0)])


def _mlp(seed=0):
    torch.manual_seed(seed)
    return mlp((6,), 3, hidden=[8, 8])


def _groups(name, options=None, model=None, lr=0.01):
    strategy = build_strategy(name, options or {})
    strategy.prepare(model if model is not None else _mlp())
    strategy.start_epoch(0)
    return strategy, {g["name"]: g["lr"] for g in strategy.param_groups(lr, 0.01)}


def test_finetune_trains_the_backbone_at_a_lower_rate():
    _, lrs = _groups("finetune", {"backbone_lr_scale": 0.1})
    assert lrs == pytest.approx(
        {"head": 0.01, "head.no_decay": 0.01, "features.2": 0.001, "features.2.no_decay": 0.001}
        | {"features.1": 0.001, "features.1.no_decay": 0.001}
    )


def test_discriminative_lr_decays_per_block_from_the_head_down():
    _, lrs = _groups("discriminative_lr", {"decay": 0.5})
    assert (lrs["head"], lrs["features.2"], lrs["features.1"]) == pytest.approx((0.01, 0.005, 0.0025))


def test_schedule_scales_each_groups_own_rate():
    strategy, _ = _groups("discriminative_lr", {"decay": 0.5})
    config = TrainConfig(epochs=2, lr=0.01, schedule="cosine", warmup_epochs=0.5)
    optimizer = build_optimizer(None, config, strategy.param_groups(config.lr, config.weight_decay))
    scheduler = build_scheduler(optimizer, config, steps_per_epoch=4)
    for _ in range(5):
        optimizer.step()
        scheduler.step()
    head, top, bottom = (g["lr"] for g in optimizer.param_groups if not g["name"].endswith("no_decay"))
    assert 0 < head < 0.01 and top == pytest.approx(head / 2) and bottom == pytest.approx(head / 4)


def test_gradual_unfreeze_trains_one_more_block_each_step():
    strategy, _ = _groups("gradual_unfreeze", {"every": 2})
    assert strategy.schedule(6) == {"head": "all epochs", "features.2": "from epoch 3", "features.1": "from epoch 5"}
    config = TrainConfig(epochs=2, batch_size=16, lr=0.05, schedule="constant")
    before = _mlp().state_dict()
    after_two = fit(_mlp(), make_blobs(48), _ce(), config, strategy=build_strategy("gradual_unfreeze", {"every": 2}))
    changed = {k for k, v in after_two.model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"head.weight", "head.bias"}
    config = TrainConfig(epochs=3, batch_size=16, lr=0.05, schedule="constant")
    after_three = fit(_mlp(), make_blobs(48), _ce(), config, strategy=build_strategy("gradual_unfreeze", {"every": 2}))
    changed = {k for k, v in after_three.model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"head.weight", "head.bias", "features.2.linear.weight", "features.2.linear.bias"}


def test_linear_probe_freezes_the_backbone():
    result = fit(_mlp(), make_blobs(48), _ce(), TrainConfig(epochs=2, batch_size=16), strategy=_probe())
    before = _mlp().state_dict()
    changed = {k for k, v in result.model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"head.weight", "head.bias"}


def _probe(**options):
    return build_strategy("linear_probe", {"cache_features": False, **options})


def test_resume_across_an_unfreezing_step_matches_an_uninterrupted_run(tmp_path):
    data, val = make_blobs(96), make_blobs(30, seed=2)
    config = TrainConfig(epochs=4, batch_size=16, lr=0.02, checkpoint_every=4, schedule="cosine")

    def run(objective, name, resume=False):
        return fit(
            _mlp(),
            data,
            objective,
            config,
            val=val,
            seed=3,
            workdir=tmp_path / name,
            resume=resume,
            strategy=build_strategy("gradual_unfreeze", {"every": 2, "lr_decay": 0.5}),
        )

    whole = run(_ce(), "a")
    with pytest.raises(KeyboardInterrupt):  # 6 steps an epoch: killed at step 10, checkpointed at 8 (epoch 2)
        run(_Crash(after=10), "b")
    resumed = run(_ce(), "b", resume=True)  # continues into epoch 3, where features.2 unfreezes
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(resumed.history) == strip(whole.history)
    for (name, p), q in zip(whole.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


def _images(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ArrayDataset(torch.randn(n, 3, 8, 8, generator=g) * 2 + 1, torch.arange(n) % 3)


def _resnet():
    torch.manual_seed(0)
    return resnet((3, 8, 8), 3, width=4, blocks=[1, 1])


def _batchnorm_state(model):
    return {k: v.clone() for k, v in model.state_dict().items() if ".running_" in k or "num_batches" in k}


def _bn_affine(model):
    return {
        f"{path}.{n}": p.detach().clone()
        for path, m in model.named_modules()
        if isinstance(m, torch.nn.BatchNorm2d)
        for n, p in m.named_parameters()
    }


def _train_one_epoch(strategy):
    model = _resnet()
    before = (_batchnorm_state(model), _bn_affine(model), model.state_dict()["features.0.weight"].clone())
    result = fit(model, _images(), _ce(), TrainConfig(epochs=1, batch_size=8, lr=0.05), strategy=strategy)
    after = (_batchnorm_state(result.model), _bn_affine(result.model), result.model.state_dict()["features.0.weight"])
    return before, after


def _equal(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_frozen_stats_keeps_running_statistics_of_frozen_layers_bit_for_bit():
    (stats, affine, _), (stats_after, affine_after, _) = _train_one_epoch(_probe())
    assert _equal(stats, stats_after) and _equal(affine, affine_after)


def test_frozen_keeps_statistics_and_affine_parameters_even_where_the_rest_trains():
    (stats, affine, conv), (stats_after, affine_after, conv_after) = _train_one_epoch(
        build_strategy("finetune", {"batchnorm": "frozen"})
    )
    assert _equal(stats, stats_after) and _equal(affine, affine_after)
    assert not torch.equal(conv, conv_after)  # the convolutions did train


def test_train_policy_lets_frozen_statistics_drift():
    (stats, affine, _), (stats_after, affine_after, _) = _train_one_epoch(_probe(batchnorm="train"))
    assert not _equal(stats, stats_after)
    assert _equal(affine, affine_after)


def test_gradual_unfreeze_updates_statistics_only_where_it_trains():
    model = _resnet()
    before = _batchnorm_state(model)
    strategy = build_strategy("gradual_unfreeze", {})
    result = fit(model, _images(), _ce(), TrainConfig(epochs=2, batch_size=8, lr=0.05), strategy=strategy)
    after = _batchnorm_state(result.model)
    assert strategy.split.names[1] == "features.4"  # the top block, unfrozen in epoch 2
    changed = {k.rsplit(".", 1)[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"features.4.bn1", "features.4.bn2", "features.4.shortcut.1"}


def test_no_strategy_keeps_todays_optimizer():
    model = _mlp()
    optimizer = build_optimizer(model, TrainConfig())
    assert [len(g["params"]) for g in optimizer.param_groups] == [3, 3]
    assert "name" not in optimizer.param_groups[0]


def test_every_strategy_is_registered():
    assert list(STRATEGIES) == ["discriminative_lr", "finetune", "gradual_unfreeze", "l2sp", "linear_probe", "lora"]


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("finetune", {"backbone_lr": 0.1}, "has no option 'backbone_lr' (did you mean \"backbone_lr_scale\"?)"),
        ("gradual_unfreeze", {"every": "often"}, "every: Input should be a valid integer"),
        ("linear_probe", {"batchnorm": "off"}, "batchnorm: Input should be 'train', 'frozen_stats' or 'frozen'"),
    ],
)
def test_bad_options_are_one_line_errors(name, options, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_strategy_options(name, options)


def test_bad_values_are_config_errors():
    with pytest.raises(ConfigError, match=re.escape("decay: Input should be less than or equal to 1 (got 2)")):
        build_strategy("discriminative_lr", {"decay": 2})
    with pytest.raises(ConfigError, match=re.escape("unknown strategy 'linear_prob' (did you mean \"linear_probe\"?)")):
        build_strategy("linear_prob", {})


def test_unfreezing_mid_run_is_refused_under_several_processes():
    strategy, _ = _groups("gradual_unfreeze", {})
    with pytest.raises(ConfigError, match="unfreezes parameters during training, which 2 processes cannot"):
        strategy.check_processes(2, epochs=3)
    strategy.check_processes(1, epochs=3)
    strategy.check_processes(2, epochs=1)  # only the head trains in a single epoch: nothing changes
    _groups("linear_probe")[0].check_processes(2, epochs=3)
