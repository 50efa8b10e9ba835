# SemPLeS on the synthetic world with the small CLIP pretrained on web-like
# captions (tools/misc/pretrain_synthetic_clip.py --captions web): its
# 'a photo of a boat.' is close to water, as real CLIP's is, so the learnt
# background prompts have a bias to remove. Only the CLIP differs from
# synthetic.py; its captions use synthetic.py's text template as they are.
_base_ = ['./synthetic.py']
model = dict(
    clip=dict(pretrained='semples_mm://assets/synthetic_webclip.safetensors'))
