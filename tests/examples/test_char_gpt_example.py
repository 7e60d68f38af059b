"""The character GPT example is a PyTorch program with only its import changed: the same
source runs on PyTorch, computes the same loss and gradients from the same weights, and
trains and samples on gpugrad."""

import importlib.util
import inspect
import math

import numpy as np
import torch

from gpugrad.examples import char_gpt

IMPORT = "import gpugrad as torch\n"


def torch_version():
    """The example's module with `import gpugrad as torch` replaced by `import torch`."""
    source = inspect.getsource(char_gpt)
    spec = importlib.util.spec_from_loader("char_gpt_on_torch", loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(source.replace(IMPORT, "import torch\n"), "char_gpt_on_torch", "exec"),
         module.__dict__)
    return module


def test_only_the_import_line_names_gpugrad():
    code = inspect.getsource(char_gpt).split('"""', 2)[2]  # after the module docstring
    assert code.count(IMPORT) == 1
    assert [ln for ln in code.splitlines() if "gpugrad" in ln] == [IMPORT.strip()]


def test_same_weights_same_loss_and_gradients_as_pytorch():
    ref = torch_version()
    torch.manual_seed(0)
    data = ref.CharDataset(ref.TEXT, 16)
    tmodel = ref.GPT(len(data.chars), 16, n_layer=2, n_head=4, n_embd=32)
    gmodel = char_gpt.GPT(len(data.chars), 16, n_layer=2, n_head=4, n_embd=32)
    gmodel.load_state_dict({k: char_gpt.torch.tensor(v.detach().numpy())
                            for k, v in tmodel.state_dict().items()})
    x = np.stack([data.data[i : i + 16].numpy() for i in (0, 40, 90)])
    y = np.stack([data.data[i + 1 : i + 17].numpy() for i in (0, 40, 90)])
    _, tloss = tmodel(torch.tensor(x), torch.tensor(y))
    _, gloss = gmodel(char_gpt.torch.tensor(x), char_gpt.torch.tensor(y))
    tloss.backward()
    gloss.backward()
    np.testing.assert_allclose(gloss.item(), tloss.item(), rtol=1e-5)
    tgrads = dict(tmodel.named_parameters())
    for name, p in gmodel.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tgrads[name].grad.numpy(),
                                   rtol=1e-3, atol=1e-5, err_msg=name)


def test_trains_from_a_dataloader_and_samples_with_topk_and_multinomial():
    m = char_gpt.main(["--steps", "80", "--block-size", "16"])
    assert m["steps"] == 80
    assert abs(m["first_loss"] - m["uniform_loss"]) < 0.5  # small init: near-uniform
    assert m["final_loss"] < 0.75 * m["uniform_loss"]  # ~2.3 vs 3.8 on seeds 0-2
    assert m["sample"].startswith("F") and len(m["sample"]) == 121
    assert math.isfinite(m["final_loss"])
