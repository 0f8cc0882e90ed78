"""Generate text with a saved character language model.

    python scripts/generate.py --model runs/timemachine --prefix "time traveller" \
        --num-chars 200 --temperature 0.8
"""

from __future__ import annotations

import argparse
import sys

from sentiment.charlm import generate, load_language_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="runs/charlm",
                        help="saved model folder (default: %(default)s)")
    parser.add_argument("--prefix", default="", help="text to start from (default: empty)")
    parser.add_argument("--num-chars", type=int, default=200, help="(default: %(default)s)")
    parser.add_argument("--temperature", type=float, default=None,
                        help="sampling temperature > 0 (default: greedy decoding)")
    parser.add_argument("--top-k", type=int, default=None,
                        help="sample from the k most likely (default: all)")
    parser.add_argument("--seed", type=int, default=None,
                        help="random seed for sampling (default: none)")
    parser.add_argument("--device", default="cpu", help="(default: %(default)s)")
    args = parser.parse_args()
    try:
        lm = load_language_model(args.model, args.device)
        print(generate(lm, args.prefix, args.num_chars, args.temperature, args.top_k, args.seed))
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
