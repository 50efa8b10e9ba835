# SegFormer MiT-B5 on SemPLeS pseudo masks: ./segformer_mit-b1_coco_pseudo.py
# with B5's depths (mmseg's segformer_mit-b5 config). pretrained_checkpoint:
# mmseg's converted mit_b5_20220624-658746d9.pth, or the authors' mit_b5.pth
# through mmsegmentation/tools/model_converters/mit2mmseg.py.
_base_ = ['./segformer_mit-b1_coco_pseudo.py']

pretrained_checkpoint = 'checkpoints/mit_b5_mmseg.pth'

model = dict(
    backbone=dict(
        num_layers=[3, 6, 40, 3],
        init_cfg=dict(checkpoint=pretrained_checkpoint)))
