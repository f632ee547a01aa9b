import hashlib
import json

from comfy_multi.worker.capabilities import Capabilities, models_from_object_info


def _loader(inputs: dict[str, object]) -> dict[str, object]:
    return {"input": {"required": inputs}, "output": ["MODEL"]}


def test_nodes_digest_and_models_from_object_info() -> None:
    info = {
        "CheckpointLoaderSimple": _loader(
            {"ckpt_name": [["sd15.safetensors", "xl.ckpt"], {"tooltip": "x"}]}
        ),
        "LoraLoader": _loader(
            {"model": ["MODEL"], "lora_name": ["COMBO", {"options": ["a.safetensors"]}]}
        ),
        "DualCLIPLoader": _loader(
            {
                "clip_name1": [["t5.safetensors"]],
                "clip_name2": [["clip_l.safetensors"]],
                "type": [["sdxl", "sd3"]],
            }
        ),
        "CLIPVisionLoader": _loader({"clip_name": [["vit.safetensors"]]}),
        "LoadImage": _loader({"image": [["cat.png"], {"image_upload": True}]}),
        "SaveImage": {"input": {"required": {"images": ["IMAGE"]}}},
    }
    raw = json.dumps(info).encode()
    caps = Capabilities.from_object_info(raw)
    assert caps.digest == hashlib.sha256(raw).hexdigest()
    assert caps.nodes == sorted(info)
    assert caps.models == {
        "checkpoints": ["sd15.safetensors", "xl.ckpt"],
        "clip_vision": ["vit.safetensors"],
        "loras": ["a.safetensors"],
        "text_encoders": ["clip_l.safetensors", "t5.safetensors"],
    }


def test_unknown_loader_inputs_keep_their_own_folder_name() -> None:
    info = {"MyLoader": _loader({"widget_model_name": [["w.pth", "x.gguf", "notes.txt"]]})}
    assert models_from_object_info(info) == {"widget_model": ["w.pth", "x.gguf"]}


def test_malformed_definitions_are_skipped() -> None:
    info = {"BadLoader": "nonsense", "OtherLoader": {"input": {"required": {"x": "y"}}}}
    assert models_from_object_info(info) == {}
