# SemPLeS on the synthetic world with the small CLIP pretrained on web-like
# captions (tools/misc/pretrain_synthetic_clip.py --captions web): its
# 'a photo of a boat.' is close to water, as real CLIP's is, so the learnt
# background prompts have a bias to remove. Only the CLIP (and, below, the
# threshold the masks are written at) differs from synthetic.py; its
# captions use synthetic.py's text template as they are.
_base_ = ['./synthetic.py']
model = dict(
    clip=dict(pretrained='semples_mm://assets/synthetic_webclip.safetensors'),
    # the written masks' threshold, chosen as synthetic.py's was: where seed
    # 0's val sweeps peak at the ends of match and refine (0.92, 0.90). This
    # CLIP pulls the masks onto the context, so they need a much higher one.
    test_cfg=dict(bg_threshold=0.90))
