"""A modification key with a bad value, or a misspelt one, in a workflow variant fails when the workflow's runs are
built (at `snakemake -n`), naming where it was written."""

from __future__ import annotations

import copy

import pytest

from cs336lm.config import ConfigError
from cs336lm.experiments.design import Design
from tests.helpers import DESIGN_BASE


@pytest.mark.parametrize(("variant", "message"), [
    ({"model.head": "shared"}, "experiments.mods.variants.bad.model.head = 'shared' is not one of untied, tied"),
    ({"model.qk_norm": "l2"}, "experiments.mods.variants.bad.model.qk_norm = 'l2' is not one of none, rmsnorm"),
    ({"model.ffn": "gelu"}, "experiments.mods.variants.bad.model.ffn = 'gelu' is not one of swiglu, silu, relu2"),
    ({"model.logit_softcap": -1.0}, "experiments.mods.variants.bad.model.logit_softcap = -1.0 must be >= 0"),
    ({"train.z_loss": -1.0}, "experiments.mods.variants.bad.train.z_loss = -1.0 must be >= 0"),
    ({"model.qknorm": "rmsnorm"},
     "unknown config key 'experiments.mods.variants.bad.model.qknorm'; did you mean 'model.qk_norm'"),
])
def test_a_bad_modification_in_a_variant_names_its_key(variant, message):
    config = copy.deepcopy(DESIGN_BASE)
    config["experiments"]["mods"] = {"variants": {"baseline": {}, "bad": variant}}
    with pytest.raises(ConfigError, match=message):
        Design(config)
