#!/usr/bin/env python3
"""make_tiny_llama.py LLAMA_CPP_SRC OUT.gguf - a tiny llama model with random weights.

Uses llama.cpp's own gguf-py (LLAMA_CPP_SRC/gguf-py) and numpy, nothing else. The tokenizer is
copied whole from LLAMA_CPP_SRC/models/ggml-vocab-llama-spm.gguf (llama's SentencePiece
vocabulary, 32000 tokens), so the model tokenizes and detokenizes real text; the weights are
random (seeded), so what it says is noise, but every token goes through the real forward pass.
Sizes: 2 layers, 64-wide embeddings, 4 heads, 128-wide feed-forward, tied output: about 8 MiB.
"""
import sys
from pathlib import Path

import numpy as np


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: make_tiny_llama.py LLAMA_CPP_SRC OUT.gguf")
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    sys.path.insert(0, str(src / "gguf-py"))
    import gguf  # noqa: E402 (from the same llama.cpp source as the server)

    vocab = gguf.GGUFReader(str(src / "models" / "ggml-vocab-llama-spm.gguf"))
    n_vocab = len(vocab.fields["tokenizer.ggml.tokens"].data)
    n_embd, n_head, n_layer, n_ff, n_ctx = 64, 4, 2, 128, 512

    w = gguf.GGUFWriter(str(out), "llama")
    w.add_name("rbee tiny random llama")
    w.add_context_length(n_ctx)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head)
    w.add_rope_dimension_count(n_embd // n_head)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(n_vocab)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    for name, field in vocab.fields.items():
        if not name.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(name, field.contents(), vtype, sub)

    rng = np.random.default_rng(7835)

    def tensor(name, *shape, ones=False):
        # numpy shape is the reverse of ggml's: (rows, cols) = (ne1, ne0)
        data = np.ones(shape, np.float32) if ones else \
            (rng.standard_normal(shape) * 0.02).astype(np.float32)
        w.add_tensor(name, data)

    tensor("token_embd.weight", n_vocab, n_embd)
    tensor("output_norm.weight", n_embd, ones=True)
    for i in range(n_layer):
        b = f"blk.{i}."
        tensor(b + "attn_norm.weight", n_embd, ones=True)
        tensor(b + "attn_q.weight", n_embd, n_embd)
        tensor(b + "attn_k.weight", n_embd, n_embd)
        tensor(b + "attn_v.weight", n_embd, n_embd)
        tensor(b + "attn_output.weight", n_embd, n_embd)
        tensor(b + "ffn_norm.weight", n_embd, ones=True)
        tensor(b + "ffn_gate.weight", n_ff, n_embd)
        tensor(b + "ffn_up.weight", n_ff, n_embd)
        tensor(b + "ffn_down.weight", n_embd, n_ff)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"{out}: {out.stat().st_size} bytes, {n_vocab} tokens, {n_layer} layers")


if __name__ == "__main__":
    main()
