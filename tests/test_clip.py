"""FrozenCLIP: prompt encoding, freezing, weight files, normalisation."""
import json

import open_clip
import pytest
import torch
from mmseg.registry import MODELS
from safetensors.torch import save_file
from torch import nn

import semples_mm.models.clip  # noqa: F401  (registers)
from float_compare import assert_close_up_to_rounding
from semples_mm.models.clip.loading import (_cached_tag_file,
                                            is_torchscript_archive)

MICRO = 'semples-test-micro'
# Rounding budgets (float_compare.py) of the micro CLIP's features: the text
# tower's block (6 sums, the MLP's 128 terms the longest), the projection
# and the norm; the image tower has a patch embedding of 3 x 16 x 16 inputs
# before its block.
MICRO_TEXT_SUMS = dict(terms=128, depth=8)
MICRO_IMAGE_SUMS = dict(terms=768, depth=9)
MICRO_CFG = dict(
    embed_dim=32,
    quick_gelu=False,
    vision_cfg=dict(image_size=32, layers=1, width=32, head_width=16,
                    patch_size=16),
    text_cfg=dict(context_length=16, vocab_size=49408, width=32, heads=2,
                  layers=1))


@pytest.fixture(scope='module', autouse=True)
def micro_config(tmp_path_factory):
    """Register a micro CLIP config (seconds to build and run)."""
    folder = tmp_path_factory.mktemp('clip_cfg')
    (folder / f'{MICRO}.json').write_text(json.dumps(MICRO_CFG))
    open_clip.add_model_config(folder)
    return folder


def build_clip(**kwargs):
    torch.manual_seed(0)
    cfg = dict(type='FrozenCLIP', model_name=MICRO)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def random_images(n=3, size=32, seed=1):
    return torch.randn(n, 3, size, size,
                       generator=torch.Generator().manual_seed(seed))


def _word_embeddings(clip, text):
    """(T, W) token embeddings of ``text``'s BPE tokens, no SOT/EOT."""
    ids = torch.tensor(clip.tokenizer.encode(text))
    with torch.no_grad():
        return clip.model.token_embedding(ids).float()


@pytest.mark.float_compare
def test_prompt_of_real_words_equals_text():
    clip = build_clip()
    template = clip.prompt_template
    assert template.insert_index == 4  # [SOT] a photo of | ctx
    # [SOT] a photo of <ctx x 3> . [EOT]: placeholders where ctx goes
    assert template.tokens(3)[0, :9].tolist() == [
        49406, 320, 1125, 539, 0, 0, 0, 269, 49407]
    ctx = torch.stack([_word_embeddings(clip, 'a red boat'),
                       _word_embeddings(clip, 'one blue car')])  # (2, 3, W)
    assert ctx.shape == (2, 3, clip.text_width)
    prompts = clip.encode_prompts(ctx)
    texts = clip.encode_text(['a photo of a red boat.',
                              'a photo of one blue car.'])
    assert prompts.shape == (2, clip.embed_dim)
    # the prompt path builds the same token embeddings another way
    assert_close_up_to_rounding(prompts, texts, **MICRO_TEXT_SUMS)
    # and it is not trivially equal: other words give another feature.
    other = clip.encode_text(['a photo of a red car.'])
    assert (prompts[0] - other[0]).abs().max() > 1e-3


@pytest.mark.float_compare
def test_prompt_gradients_reach_ctx_only():
    clip = build_clip()
    learner = MODELS.build(dict(type='BackgroundPromptLearner',
                                class_names=['boat', 'cow'], length=5,
                                width=clip.text_width))
    features = clip.encode_prompts(learner())
    torch.testing.assert_close(features.norm(dim=-1), torch.ones(2))
    features[:, 0].sum().backward()
    assert learner.ctx.grad is not None
    assert learner.ctx.grad.abs().sum() > 0
    assert all(p.grad is None for p in clip.parameters())


def test_prompt_too_long_and_wrong_width_fail():
    clip = build_clip()  # context length 16: [SOT] a photo of . [EOT] = 6
    assert clip.prompt_template.max_length == 10
    clip.encode_prompts(torch.rand(1, 10, clip.text_width))
    with pytest.raises(ValueError, match='at most 10'):
        clip.encode_prompts(torch.rand(1, 11, clip.text_width))
    with pytest.raises(ValueError, match='width'):
        clip.encode_prompts(torch.rand(1, 4, clip.text_width + 1))


def test_stays_frozen_under_parent_train():
    clip = build_clip()
    parent = nn.ModuleDict(dict(clip=clip, head=nn.Linear(2, 2)))
    parent.train()
    assert parent['head'].training
    assert not clip.training
    assert not any(m.training for m in clip.modules())
    assert not any(p.requires_grad for p in clip.parameters())


@pytest.mark.float_compare
def test_encode_image_gradient_flows_to_input():
    clip = build_clip()
    images = random_images(n=3, size=40).requires_grad_()  # resized to 32
    features = clip.encode_image(images)
    assert features.shape == (3, clip.embed_dim)
    torch.testing.assert_close(features.norm(dim=-1), torch.ones(3))
    features[:, :4].sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert all(p.grad is None for p in clip.parameters())
    # A frozen input takes the no-grad path.
    assert not clip.encode_image(images.detach()).requires_grad


@pytest.mark.float_compare
def test_chunking_does_not_change_features():
    images = random_images(n=5)
    whole = build_clip(image_chunk_size=64).encode_image(images)
    chunked = build_clip(image_chunk_size=2).encode_image(images)
    assert_close_up_to_rounding(whole, chunked, **MICRO_IMAGE_SUMS)


@pytest.mark.float_compare
def test_normalisation_conversion_by_hand():
    mean, std = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
    clip = build_clip(input_mean=mean, input_std=std)
    pixel = torch.tensor([255., 0., 128.])
    normalised = (pixel - torch.tensor(mean)) / torch.tensor(std)
    images = normalised.view(1, 3, 1, 1).expand(1, 3, 32, 32)
    clip_mean = (0.48145466, 0.4578275, 0.40821073)  # OpenAI's, the default
    clip_std = (0.26862954, 0.26130258, 0.27577711)
    expected = [(255 / 255 - clip_mean[0]) / clip_std[0],
                (0 / 255 - clip_mean[1]) / clip_std[1],
                (128 / 255 - clip_mean[2]) / clip_std[2]]
    converted = clip.to_clip_input(images)
    assert converted.shape == (1, 3, 32, 32)
    torch.testing.assert_close(converted[0, :, 5, 7], torch.tensor(expected),
                               atol=1e-5, rtol=0)
    # A constant image keeps its value through the bicubic resize.
    big = normalised.view(1, 3, 1, 1).expand(1, 3, 50, 50)
    torch.testing.assert_close(clip.to_clip_input(big),
                               converted, atol=1e-5, rtol=0)
    # The authors' way: values untouched, only resized.
    raw = build_clip(clip_normalize=False).to_clip_input(images)
    torch.testing.assert_close(raw, images)


@pytest.mark.float_compare
def test_text_cache_and_too_long_text():
    clip = build_clip()
    first = clip.encode_text(['a photo of a boat.', 'a photo of water.'])
    assert ('a photo of a boat.', 'cpu') in clip._text_cache
    again = clip.encode_text(['a photo of water.'])
    torch.testing.assert_close(again[0], first[1])
    assert not first.requires_grad
    with pytest.raises(ValueError, match='context length 16'):
        clip.encode_text(['a photo of ' + 'very ' * 20 + 'long boat.'])


@pytest.mark.float_compare
def test_state_dict_roundtrip_keeps_weights_and_clears_cache():
    clip = build_clip()
    clip.encode_text(['a photo of a boat.'])
    state = clip.state_dict()
    assert 'model.visual.conv1.weight' in state
    torch.manual_seed(123)
    other = MODELS.build(dict(type='FrozenCLIP', model_name=MICRO))
    other.encode_text(['a photo of a boat.'])
    other.load_state_dict(state)
    assert not other._text_cache
    torch.testing.assert_close(other.encode_text(['a photo of a boat.']),
                               clip.encode_text(['a photo of a boat.']))


@pytest.mark.float_compare
@pytest.mark.parametrize('precision', ['fp16', 'bf16'])
def test_low_precision_builds_and_encodes(precision):
    clip = build_clip(precision=precision)
    reference = build_clip()
    assert clip.dtype != torch.float32
    features = clip.encode_image(random_images())
    assert features.dtype == torch.float32
    torch.testing.assert_close(features, reference.encode_image(
        random_images()), atol=5e-2, rtol=0)


# ------------------------------------------------------------------ weights
@pytest.fixture(scope='module')
def weight_files(tmp_path_factory):
    """The same random QuickGELU micro CLIP saved in every supported form."""
    folder = tmp_path_factory.mktemp('clip_weights')
    torch.manual_seed(7)
    model = open_clip.create_model(MICRO, quick_gelu=True).eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    files = {}
    # OpenAI's released format: a TorchScript archive whose state dict also
    # has input_resolution, context_length and vocab_size.
    scripted_source = open_clip.create_model(MICRO, quick_gelu=True)
    scripted_source.load_state_dict(state)
    for key, value in (('input_resolution', 32), ('context_length', 16),
                       ('vocab_size', 49408)):
        if hasattr(scripted_source, key):
            delattr(scripted_source, key)  # a plain int in open_clip
        scripted_source.register_buffer(key, torch.tensor(value))
    files['openai_jit'] = folder / 'openai_jit.pt'
    torch.jit.script(scripted_source.eval()).save(str(files['openai_jit']))
    # OpenAI-format state dict (with the extra entries), torch.save'd.
    files['openai_state_dict'] = folder / 'openai_state_dict.pt'
    torch.save(dict(state, input_resolution=torch.tensor(32),
                    context_length=torch.tensor(16),
                    vocab_size=torch.tensor(49408)),
               files['openai_state_dict'])
    # open_clip-format state dicts: plain .bin, wrapped .pth, .safetensors.
    files['bin'] = folder / 'open_clip.bin'
    torch.save(state, files['bin'])
    files['wrapped_pth'] = folder / 'wrapped.pth'
    torch.save({'state_dict': {'module.' + k: v for k, v in state.items()}},
               files['wrapped_pth'])
    files['safetensors'] = folder / 'open_clip.safetensors'
    save_file(state, str(files['safetensors']),
              metadata={'quick_gelu': 'true'})
    files['safetensors_no_meta'] = folder / 'no_meta.safetensors'
    save_file(state, str(files['safetensors_no_meta']))
    return model, files


def _features(clip_or_model, images, tokens):
    with torch.no_grad():
        return (clip_or_model.encode_image(images, normalize=True),
                clip_or_model.encode_text(tokens, normalize=True))


@pytest.mark.float_compare
@pytest.mark.parametrize('form, quick_gelu', [
    ('openai_jit', True), ('openai_state_dict', True), ('bin', False),
    ('wrapped_pth', False), ('safetensors', True),
    ('safetensors_no_meta', False)
])
def test_every_pretrained_form_loads(weight_files, form, quick_gelu):
    """Each file gives the reference features exactly when the activation is
    right; QuickGELU is detected from OpenAI files and safetensors metadata,
    and files that do not say follow the model config (GELU here)."""
    reference, files = weight_files
    clip = MODELS.build(dict(type='FrozenCLIP', model_name=MICRO,
                             pretrained=str(files[form])))
    assert clip.quick_gelu is quick_gelu
    assert is_torchscript_archive(str(files[form])) is (form == 'openai_jit')
    images = random_images()
    tokens = clip.tokenize(['a photo of a boat.', 'a photo of water.'])
    got = _features(clip.model, images, tokens)
    want = _features(reference, images, tokens)
    if quick_gelu:
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    else:
        # Same weights, wrong activation: the features differ ...
        assert (got[0] - want[0]).abs().max() > 1e-4
        # ... and forcing QuickGELU recovers them.
        forced = MODELS.build(dict(type='FrozenCLIP', model_name=MICRO,
                                   pretrained=str(files[form]),
                                   quick_gelu=True))
        torch.testing.assert_close(
            _features(forced.model, images, tokens), want, atol=1e-6,
            rtol=0)
    # the loaded model is frozen like any other
    assert not any(p.requires_grad for p in clip.parameters())


def test_weights_of_another_model_fail_with_file_name(weight_files, tmp_path):
    _, files = weight_files
    state = torch.load(files['bin'], weights_only=True)
    state['positional_embedding'] = state['positional_embedding'][:8]
    state.pop('logit_scale')
    broken = tmp_path / 'broken.bin'
    torch.save(state, broken)
    with pytest.raises(ValueError, match='broken.bin'):
        build_clip(pretrained=str(broken))


def test_offline_tag_fails_naming_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setenv('HF_HOME', str(tmp_path / 'hf'))
    monkeypatch.setenv('NO_PROXY', '')
    monkeypatch.setenv('HTTPS_PROXY', 'http://127.0.0.1:9')  # unreachable
    with pytest.raises(FileNotFoundError) as error:
        MODELS.build(dict(type='FrozenCLIP', model_name='ViT-B-32',
                          pretrained='openai', cache_dir=str(tmp_path)))
    message = str(error.value)
    assert 'ViT-B-32.pt' in message  # OpenAI's URL
    assert 'timm/vit_base_patch32_clip_224.openai' in message  # hf hub id
    assert "pretrained='/path/to/file'" in message
    # Even when downloads are allowed, HF_HUB_OFFLINE stops them at once.
    with pytest.raises(FileNotFoundError, match='HF_HUB_OFFLINE'):
        MODELS.build(dict(type='FrozenCLIP', model_name='ViT-B-32',
                          pretrained='laion2b_s34b_b79k',
                          cache_dir=str(tmp_path), allow_download=True))


def test_unknown_pretrained_value_fails():
    with pytest.raises(FileNotFoundError, match='not-a-tag'):
        build_clip(pretrained='not-a-tag')
    with pytest.raises(ValueError, match='no-such-model'):
        MODELS.build(dict(type='FrozenCLIP', model_name='no-such-model'))


def test_cached_tag_file_is_found_without_network(tmp_path):
    url = 'https://example.invalid/clip/models/abc/ViT-Tiny.pt'
    assert _cached_tag_file(dict(url=url), str(tmp_path)) is None
    (tmp_path / 'ViT-Tiny.pt').write_bytes(b'x')
    assert _cached_tag_file(dict(url=url),
                            str(tmp_path)) == str(tmp_path / 'ViT-Tiny.pt')


@pytest.mark.float_compare
def test_shipped_synthetic_clip_knows_the_world():
    """The shipped small CLIP loads like any file and tells the world's
    objects and contexts apart zero-shot (its json records the full run)."""
    import numpy as np

    from semples_mm.datasets.synthetic import (SYNTHETIC_CLASSES,
                                               SyntheticRenderer, caption_for)
    from semples_mm.models.clip import (SYNTHETIC_CLIP_MODEL_NAME,
                                        synthetic_clip_path)
    clip = MODELS.build(dict(type='FrozenCLIP',
                             model_name=SYNTHETIC_CLIP_MODEL_NAME,
                             pretrained=synthetic_clip_path()))
    renderer = SyntheticRenderer(64)
    rng = np.random.default_rng(12345)
    labels = [i % len(SYNTHETIC_CLASSES) for i in range(15)]
    objects = [renderer.render(rng, [c], None, grey_background=True)[0]
               for c in labels]
    contexts = [renderer.render(rng, [], c)[0] for c in labels]
    mean = torch.tensor((123.675, 116.28, 103.53)).view(1, 3, 1, 1)
    std = torch.tensor((58.395, 57.12, 57.375)).view(1, 3, 1, 1)

    def accuracy(images, texts):
        x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
        scores = clip.encode_image((x - mean) / std) @ clip.encode_text(
            texts).t()
        return (scores.argmax(1) == torch.tensor(labels)).float().mean()

    num = len(SYNTHETIC_CLASSES)
    assert accuracy(objects, [caption_for([c], None)
                              for c in range(num)]) >= 0.8
    assert accuracy(contexts, [caption_for([], c) for c in range(num)]) >= 0.8


# -------------------------------------------------------------- model names
# An architecture registered nowhere (context length 12, QuickGELU), so a
# model built from it can only have read its config from the saved files.
SAVED_CFG = dict(MICRO_CFG, embed_dim=24, quick_gelu=True,
                 text_cfg=dict(MICRO_CFG['text_cfg'], context_length=12))
SAVED_MEAN = (0.5, 0.4, 0.3)
SAVED_STD = (0.2, 0.25, 0.3)


def _save_like_open_clip(model, model_cfg, folder):
    """What open_clip's save_for_hf writes, minus the tokenizer files (the
    CLIP tokenizer has none): open_clip_config.json by open_clip's own
    save_config_for_hf, and the state dict as open_clip_model.safetensors."""
    from pathlib import Path

    from open_clip.constants import HF_CONFIG_NAME, HF_SAFE_WEIGHTS_NAME
    from open_clip.push_to_hf_hub import save_config_for_hf
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_config_for_hf(model, folder / HF_CONFIG_NAME, model_config=model_cfg)
    save_file(model.state_dict(), str(folder / HF_SAFE_WEIGHTS_NAME))
    return folder


@pytest.fixture(scope='module')
def saved_clip(tmp_path_factory):
    """A random CLIP of SAVED_CFG as open_clip saves it, and the model."""
    from open_clip.model import set_model_preprocess_cfg
    torch.manual_seed(11)
    model = open_clip.model.CLIP(**SAVED_CFG).eval()
    set_model_preprocess_cfg(model, dict(
        mean=SAVED_MEAN, std=SAVED_STD, interpolation='bilinear'))
    folder = _save_like_open_clip(model, SAVED_CFG,
                                  tmp_path_factory.mktemp('saved') / 'clip')
    return model, folder


def _same_features(clip, reference):
    images = random_images()
    tokens = clip.tokenize(['a photo of a boat.', 'a photo of water.'])
    torch.testing.assert_close(_features(clip.model, images, tokens),
                               _features(reference, images, tokens),
                               atol=1e-6, rtol=0)


@pytest.mark.float_compare
def test_local_dir_loads_config_weights_and_tokenizer(saved_clip):
    reference, folder = saved_clip
    assert sorted(p.name for p in folder.iterdir()) == [
        'open_clip_config.json', 'open_clip_model.safetensors']
    clip = MODELS.build(dict(type='FrozenCLIP',
                             model_name=f'local-dir:{folder}'))
    # QuickGELU, context length 12 and the preprocessing come from the
    # folder's config: any of them wrong changes the features below.
    assert clip.quick_gelu is True
    assert clip.context_length == 12 and clip.tokenizer.context_length == 12
    assert clip.tokenize(['a boat']).shape == (1, 12)
    assert tuple(clip.model.visual.preprocess_cfg['mean']) == SAVED_MEAN
    assert clip.interpolation == 'bilinear'
    assert clip.embed_dim == 24
    _same_features(clip, reference)
    assert not any(p.requires_grad for p in clip.parameters())


@pytest.mark.float_compare
def test_local_dir_weights_replaced_by_pretrained(saved_clip, tmp_path):
    reference, folder = saved_clip
    torch.manual_seed(12)
    other = open_clip.model.CLIP(**SAVED_CFG).eval()
    other_file = tmp_path / 'other.safetensors'
    save_file(other.state_dict(), str(other_file))
    clip = MODELS.build(dict(type='FrozenCLIP',
                             model_name=f'local-dir:{folder}',
                             pretrained=str(other_file)))
    _same_features(clip, other)
    with pytest.raises(AssertionError):
        _same_features(clip, reference)


def test_local_dir_without_weights_or_config_fails_clearly(saved_clip,
                                                           tmp_path):
    import shutil
    _, folder = saved_clip
    bare = tmp_path / 'config_only'
    bare.mkdir()
    shutil.copy(folder / 'open_clip_config.json', bare)
    with pytest.raises(FileNotFoundError) as error:
        MODELS.build(dict(type='FrozenCLIP', model_name=f'local-dir:{bare}'))
    message = str(error.value)
    assert str(bare) in message and 'open_clip_model.safetensors' in message
    assert 'pretrained=' in message
    # the file open_clip would load from the folder, named when it breaks
    (bare / 'notes.pth').write_bytes(b'')
    with pytest.raises(ValueError,
                       match=r'notes.pth cannot be read back: it is empty'):
        MODELS.build(dict(type='FrozenCLIP', model_name=f'local-dir:{bare}'))
    with pytest.raises(FileNotFoundError, match='open_clip_config.json'):
        MODELS.build(dict(type='FrozenCLIP',
                          model_name=f'local-dir:{tmp_path}'))
    with pytest.raises(FileNotFoundError, match='does not exist'):
        MODELS.build(dict(type='FrozenCLIP',
                          model_name=f'local-dir:{tmp_path}/missing'))


@pytest.mark.float_compare
@pytest.mark.parametrize('wrapped', [False, True])
def test_model_config_json_builds_without_registering(saved_clip, tmp_path,
                                                      wrapped):
    reference, folder = saved_clip
    content = dict(model_cfg=SAVED_CFG) if wrapped else SAVED_CFG
    config = tmp_path / 'semples-json-test.json'
    config.write_text(json.dumps(content))
    clip = MODELS.build(dict(
        type='FrozenCLIP', model_name=str(config),
        pretrained=str(folder / 'open_clip_model.safetensors')))
    assert clip.quick_gelu is True  # from the JSON: the file does not say
    assert clip.context_length == 12
    _same_features(clip, reference)
    # The file stays private: its name does not become a registered model.
    assert 'semples-json-test' not in open_clip.list_models()


def test_model_config_json_that_is_no_config_fails(tmp_path):
    config = tmp_path / 'half.json'
    config.write_text(json.dumps(dict(embed_dim=8, text_cfg={})))
    with pytest.raises(ValueError, match=r"half.json lacks \['vision_cfg'\]"):
        MODELS.build(dict(type='FrozenCLIP', model_name=str(config)))
    with pytest.raises(FileNotFoundError, match='missing.json'):
        MODELS.build(dict(type='FrozenCLIP',
                          model_name=str(tmp_path / 'missing.json')))


def test_unknown_name_is_short_with_close_matches():
    with pytest.raises(ValueError) as error:
        MODELS.build(dict(type='FrozenCLIP', model_name='ViT-B-23'))
    message = str(error.value)
    assert "closest registered names: 'ViT-B-32'" in message
    for form in ("'local-dir:/path/to/folder'", "'hf-hub:org/name'",
                 'model-config JSON file'):
        assert form in message
    # not the ~150 registered names of before
    assert 'convnext_xxlarge' not in message and len(message) < 900
    with pytest.raises(ValueError, match="closest registered names: "
                       "'semples-synthetic-tiny'"):
        MODELS.build(dict(type='FrozenCLIP',
                          model_name='SEMPLES-synthetic-tini'))


def test_registered_names_resolve_as_open_clip_reads_them():
    from semples_mm.models.clip import resolve_model_name
    source = resolve_model_name('ViT-B/32')  # open_clip reads 'ViT-B-32'
    assert source.kind == 'registered'
    assert source.tag_model_name == 'ViT-B-32'
    assert source.model_cfg == open_clip.get_model_config('ViT-B-32')
    assert source.bundled_weights() is None


def _no_network(monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError(f'network access: {args}')

    monkeypatch.setattr(socket.socket, 'connect', refuse)
    monkeypatch.setattr(socket, 'create_connection', refuse)


def test_hf_hub_not_cached_fails_without_network(monkeypatch, tmp_path):
    _no_network(monkeypatch)
    with pytest.raises(FileNotFoundError) as error:
        MODELS.build(dict(type='FrozenCLIP',
                          model_name='hf-hub:timm/vit_base_patch32_clip_224'
                          '.openai', cache_dir=str(tmp_path)))
    message = str(error.value)
    assert 'timm/vit_base_patch32_clip_224.openai' in message
    assert 'not in the local Hugging Face cache' in message
    assert str(tmp_path) in message and 'never downloads' in message
    assert ('hf download timm/vit_base_patch32_clip_224.openai '
            'open_clip_config.json open_clip_model.safetensors') in message
    assert "model_name='local-dir:/path/to/folder'" in message


def _fake_hf_cache(cache, repo_id, files):
    """The layout huggingface_hub gives a downloaded repository."""
    import shutil
    repo = cache / ('models--' + repo_id.replace('/', '--'))
    commit = '0123456789abcdef0123456789abcdef01234567'
    (repo / 'refs').mkdir(parents=True)
    (repo / 'refs' / 'main').write_text(commit)
    snapshot = repo / 'snapshots' / commit
    snapshot.mkdir(parents=True)
    for path in files:
        shutil.copy(path, snapshot / path.name)


@pytest.mark.float_compare
def test_hf_hub_cached_loads_offline(monkeypatch, saved_clip, tmp_path):
    reference, folder = saved_clip
    _fake_hf_cache(tmp_path, 'semples/tiny-clip', folder.iterdir())
    _no_network(monkeypatch)
    clip = MODELS.build(dict(type='FrozenCLIP',
                             model_name='hf-hub:semples/tiny-clip',
                             cache_dir=str(tmp_path)))
    assert clip.context_length == 12 and clip.quick_gelu is True
    _same_features(clip, reference)
    # the config alone is cached: the weights are named for fetching
    _fake_hf_cache(tmp_path, 'semples/config-only',
                   [folder / 'open_clip_config.json'])
    with pytest.raises(FileNotFoundError) as error:
        MODELS.build(dict(type='FrozenCLIP',
                          model_name='hf-hub:semples/config-only',
                          cache_dir=str(tmp_path)))
    assert 'none of its weights' in str(error.value)
    assert ('hf download semples/config-only open_clip_model.safetensors'
            in str(error.value))


def test_weights_of_another_width_fail_naming_file_model_shape(tmp_path):
    wide = dict(MICRO_CFG, vision_cfg=dict(MICRO_CFG['vision_cfg'], width=48),
                text_cfg=dict(MICRO_CFG['text_cfg'], width=48, heads=3))
    wide_file = tmp_path / 'wide_clip.safetensors'
    save_file(open_clip.model.CLIP(**wide).state_dict(), str(wide_file))
    with pytest.raises(ValueError) as error:
        build_clip(pretrained=str(wide_file))
    message = str(error.value)
    assert str(wide_file) in message
    assert f"model_name='{MICRO}'" in message
    assert 'has shape (16, 48) in the file but (16, 32) in the model' in (
        message)  # the text position embedding, the first tensor that differs
    assert 'another size' in message
