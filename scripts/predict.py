"""Classify texts with a saved sentiment model; one JSON line per text.

    python scripts/predict.py --model runs/sentiment "A wonderful, moving film."
    cat reviews.txt | python scripts/predict.py --model runs/sentiment     # one review per line
"""

from __future__ import annotations

import argparse
import json
import sys

from sentiment.predict import DEFAULT_MODEL_DIR, load_model, predict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("texts", nargs="*", help="texts to classify (default: lines of stdin)")
    parser.add_argument("--model", default=None,
                        help="saved model folder "
                             f"(default: $SENTIMENT_MODEL or {DEFAULT_MODEL_DIR})")
    parser.add_argument("--batch-size", type=int, default=64, help="(default: %(default)s)")
    parser.add_argument("--device", default=None, help="auto, cpu or cuda (default: auto)")
    parser.add_argument("--mixed-precision", default=True, action=argparse.BooleanOptionalAction,
                        help="bfloat16 on CPUs with native bf16, float16 on CUDA; "
                             "--no-mixed-precision scores in float32 (default: on)")
    args = parser.parse_args()
    texts = args.texts or [line.rstrip("\n") for line in sys.stdin]
    texts = [text for text in texts if text.strip()]
    if not texts:
        parser.error("no texts given (as arguments or lines on stdin)")
    try:
        model = load_model(args.model, args.device)
    except FileNotFoundError as error:
        sys.exit(f"error: {error}")
    results = predict(texts, model, args.batch_size, mixed_precision=args.mixed_precision)
    for text, result in zip(texts, results, strict=True):
        print(json.dumps({"text": text, **result}, ensure_ascii=False))


if __name__ == "__main__":
    main()
