"""One configuration for every task, nested by concern: ``data``, ``model`` (``core`` + ``head``)
and ``train``.

The same object builds the model (:func:`sentiment.nn.heads.build_model`), is written as it is to a
model folder's ``config.json``, and rebuilds the model, its preprocessing and its exact data split
from that file alone (:meth:`Config.from_dict`). Field names are unique across the sections, so a
script's flags are the field names (``--hidden-dim``, ``--epochs``) and presets are flat
dictionaries of them. A task is what the model predicts:

- ``sentiment``: a review's label, from :class:`ReviewData`;
- ``word-lm``: the next (and previous) word of unlabelled reviews, from :class:`ReviewData`;
- ``char-lm``: the next character of text files, from :class:`TextData`.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import asdict, dataclass, field, fields

TASKS = ("sentiment", "word-lm", "char-lm")
DEFAULT_SOURCE = "stanfordnlp/imdb"
DEFAULT_VECTORS = "glove.6B.100d"
DEFAULT_LABELS = ("negative", "positive")
FORMAT_VERSION = 2
SCHEDULES = ("constant", "linear", "cosine")
OPTIMIZERS = ("adam", "sgd")
OUTPUT_LAYERS = ("full", "adaptive")
POOLINGS = ("final", "concat", "mil")
DIRECTIONS = ("both", "forward", "backward")
LANGUAGE_MODELS = ("word-lm", "char-lm")
BAD_ROWS = ("error", "skip")  # a file row of the wrong shape: stop naming it, or skip it
ENCODING_ERRORS = ("replace", "strict")  # invalid UTF-8 in a text: U+FFFD, or stop
ENSEMBLE_FILE = "ensemble.json"  # what makes a folder an ensemble (sentiment.kinds.checkpoint)
ONNX_FILE = "model.onnx"  # what makes a folder an ONNX export (sentiment.kinds.onnx)
RNN_TYPE_NAMES = ("lstm", "gru", "rnn")  # torch.nn.LSTM, GRU, RNN (sentiment.nn.core.RNN_TYPES)


def option(help: str | None = None, *, choices: tuple | None = None,
           tasks: tuple[str, ...] | None = None, flag: str | None = None,
           group: str | None = None, **kwargs):
    """A config field and its command-line option: ``help`` is its one line in ``COMMAND
    --help``, ``choices`` the values it accepts (listed there), ``tasks`` those whose commands
    offer it (default: every task), ``flag`` its option name (default: the field's), ``group``
    its heading in the help (default: its section's: data, model, training)."""
    given = {"help": help, "choices": choices, "tasks": tasks, "flag": flag, "group": group}
    metadata = {**kwargs.pop("metadata", {}),
                **{key: value for key, value in given.items() if value is not None}}
    return field(**kwargs, metadata=metadata)


def only(*tasks: str, **kwargs):
    """A field that only ``tasks`` read: the other tasks' commands offer no flag for it."""
    return option(tasks=tasks, **kwargs)


PADDING_MODES = ("auto", "exact", "packed", "padded")
KEEP = ("start", "end")  # the end of a long text that ReviewData.max_length keeps
LM_SEQUENCES = ("reviews", "windows")
LAYOUTS = ("joint", "separate")
INPUT_TYPES = ("embedding", "onehot")


@dataclass
class CoreConfig:
    """Architecture of :class:`sentiment.nn.core.RNNCore`."""

    # set from the vocabulary when the model is built (no task offers a flag for it)
    vocab_size: int = option("symbols in the vocabulary", default=0, tasks=())
    embed_dim: int = option("size of each token's embedding (word vectors bring their own)",
                            default=100)
    hidden_dim: int = option("units of each recurrent layer, per direction", default=256)
    num_layers: int = option("stacked recurrent layers", default=2)
    rnn_type: str = option("the recurrent cell", default="lstm", choices=RNN_TYPE_NAMES)
    bidirectional: bool = option("read each text both ways (one stack per direction)",
                                 default=True)
    layout: str = option("joint: each layer reads both directions below it (the classic "
                         "BiLSTM); separate: one stack per direction (ELMo, what pretraining "
                         "needs)", default="joint", choices=LAYOUTS)
    reverse: bool = option("a one-direction core that reads each text from its end (a "
                           "separate-layout encoder's backward stack, fine-tuned alone)",
                           default=False, tasks=("sentiment",))
    # From scratch on IMDB, chosen on validation only: 0.5 / 0.5 without the weight average
    # 0.9220 against 0.3 / 0.2 with it 0.9200, test 0.9075 read once (BENCHMARKS.md, accuracy).
    # Fine-tuning an encoder passes 0.3 / 0.2 (docs/pretraining.md)
    dropout: float = option("dropout between recurrent layers", default=0.5)
    input_dropout: float = option("dropout on the embeddings", default=0.5)
    input_type: str = option("embedding: learnt vectors; onehot: each symbol one-hot (small "
                             "vocabularies: characters)", default="embedding",
                             choices=INPUT_TYPES)
    pad_index: int | None = option("the padding id, from the vocabulary", default=0, tasks=())
    padding_mode: str = option("how padding is kept out of the states: exact (reversal in "
                               "place, fast on CPU), packed (cuDNN), auto (packed on CUDA, else "
                               "exact), padded (inexact, for benchmarks)", default="auto",
                               compare=False, choices=PADDING_MODES)

    def __post_init__(self) -> None:
        if self.rnn_type not in RNN_TYPE_NAMES:
            raise ValueError(f"rnn_type must be one of {sorted(RNN_TYPE_NAMES)}, "
                             f"got {self.rnn_type!r}")
        if self.input_type not in INPUT_TYPES:
            raise ValueError(f"input_type must be 'embedding' or 'onehot', got {self.input_type!r}")
        if self.padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.reverse and self.bidirectional:
            raise ValueError("reverse is for a one-direction core; a bidirectional core already "
                             "reads both ways")
        for name in ("hidden_dim", "num_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.vocab_size < 0:
            raise ValueError(f"vocab_size must be >= 1, got {self.vocab_size}")
        for name in ("dropout", "input_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.input_type == "onehot":
            self.embed_dim = self.vocab_size  # the one-hot vector is the first layer's input

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_dim(self) -> int:
        return self.hidden_dim * self.num_directions

    @property
    def separate(self) -> bool:
        """Whether each direction is its own stack (ELMo layout)."""
        return self.layout == "separate" and self.bidirectional

    def layer_input_dim(self, layer: int) -> int:
        if layer == 0:
            return self.embed_dim
        return self.hidden_dim if self.separate else self.output_dim

    def to_dict(self) -> dict:
        return asdict(self)


TEXT_MODES = ("raw", "d2l")  # the char LM's preprocessing: unchanged, or d2l's letters only
SAMPLINGS = ("sequential", "random")


@dataclass
class DataConfig:
    """Settings every task's data has."""

    valid_fraction: float = option("share of the training data held out for validation",
                                   default=0.1)
    batch_size: int = option("rows per batch, at most", default=64)
    num_steps: int = only(*LANGUAGE_MODELS, default=100,
                          help="length of each window of the language model's stream")

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.num_steps < 1:
            raise ValueError("batch_size and num_steps must be >= 1")


@dataclass
class ReviewData(DataConfig):
    """Labelled reviews (and, for the word LM, unlabelled ones): source, tokens, vocabulary, split.

    The validation split is carved from ``train`` (stratified, seeded by ``split_seed``, else
    ``train.seed``) after ``train_limit``; the word LM reads only the reviews left for
    training, never validation or test reviews.
    """

    source: str = option("the labelled data: a hub id, a folder of train/test files, "
                         "aclImdb/, or one CSV, JSON-lines or Parquet file",
                         default=DEFAULT_SOURCE, flag="data")
    text_column: str = option("the column holding the text", default="text")
    label_column: str = option("the column holding the label", default="label")
    on_bad_rows: str = option("a CSV row of the wrong field count: stop naming its line, or "
                              "skip it", default="error", choices=BAD_ROWS)
    encoding_errors: str = option("invalid UTF-8 bytes: replace them by U+FFFD, or stop",
                                  default="replace", choices=ENCODING_ERRORS)
    test_fraction: float = option("one file given: the share carved (stratified, seeded) for "
                                  "test", default=0.2)
    train_split: str = option("the training split's name in a hub dataset or folder",
                              default="train")
    test_split: str = option("the test split's name in a hub dataset or folder", default="test")
    lowercase: bool = option("lower-case every token", default=True)
    max_vocab: int = option("the vocabulary's size at most (the most frequent tokens)",
                            default=10_000)
    min_freq: int = option("tokens seen fewer times than this are unknown", default=1)
    max_length: int | None = option("read at most this many tokens of each text (see --keep)",
                                    default=None)
    # "end": a review's verdict is mostly at its end (BENCHMARKS.md, inference)
    keep: str = option("which tokens of a text longer than --max-length are read: its first "
                       "or its last", default="start", choices=KEEP)
    # long reviews come in fewer rows, so a full IMDB epoch peaks at 1.6 GB of RSS instead of
    # 4.8 (BENCHMARKS.md, training speed and memory)
    max_tokens: int | None = option("padded tokens per batch, at most", default=16_384)
    train_limit: int | None = option("use only this many training reviews (seeded sample)",
                                     default=None)
    test_limit: int | None = only("sentiment", default=None,
                                  help="score only this many test reviews (seeded sample)")
    unlabelled: str | None = option(
        "unlabelled text of your own (a .txt/.csv/.jsonl/.parquet file, a folder, a hub id) for "
        "the word LM, a teacher's labels and the virtual adversary; none: the unsupervised "
        "split beside --data", default=None)
    unlabelled_column: str = option("the column holding the unlabelled text", default="text")
    unlabelled_limit: int | None = option("use only this many unlabelled reviews (seeded "
                                          "sample)", default=None)
    lm_valid_reviews: int = only("word-lm", default=1_000,
                                 help="unlabelled reviews held out for perplexity")
    lm_sequences: str = only("word-lm", default="reviews", choices=LM_SEQUENCES,
                             help="read whole reviews (bucketed, as the classifier reads them) "
                                  "or random windows of --num-steps words, each from a zero "
                                  "state")
    bucket: bool = option("batch texts of similar length together (less padding)",
                          default=True)
    num_proc: int | None = option("processes that tokenize (none: every core)", default=None)
    # Set it to train replicates of one recipe on one split: --seed 1 --split-seed 0 draws other
    # dropout masks, batch order and new weights, and reads the same validation reviews (a
    # teacher fitted on them accepts it)
    split_seed: int | None = option("the seed that carves validation (and one file's test "
                                    "split); none: --seed", default=None)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lm_sequences not in LM_SEQUENCES:
            raise ValueError(f"lm_sequences must be 'reviews' or 'windows', "
                             f"got {self.lm_sequences!r}")
        if self.keep not in KEEP:
            raise ValueError(f"keep must be one of {KEEP}, got {self.keep!r}")
        for name in ("max_length", "max_tokens"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


# the fields of ReviewData that define a classifier's data split: a student's must be its
# teacher's, an ensemble's members' the same
SPLIT_FIELDS = ("source", "text_column", "label_column", "test_fraction", "train_split",
                "test_split", "train_limit", "valid_fraction")
# and those that say how a text becomes token ids
READING_FIELDS = ("lowercase", "max_length", "keep")


@dataclass
class TextData(DataConfig):
    """Plain-text files for the character LM: preprocessing mode and how windows are drawn."""

    source: list[str] = option("UTF-8 text files to learn from (required)",
                               default_factory=list, flag="text")
    mode: str = option("raw: every character; d2l: lower-case letters and space (28 symbols)",
                       default="raw", choices=TEXT_MODES)
    sampling: str = option("sequential windows with the state carried over (truncated BPTT), "
                           "or random ones from a zero state", default="sequential",
                           choices=SAMPLINGS)


@dataclass
class HeadConfig:
    """The task head on the core. ``labels`` and ``pooling`` are the classifier's;
    ``tie_weights``, ``output_layer`` and ``cutoffs`` the language model's."""

    output_dropout: float = option("dropout before the head's output layer", default=0.5)
    pooling: str = only("sentiment", default="concat", choices=POOLINGS,
                        help="what the head reads: the final states, or those joined with max- "
                             "and mean-pooling over every position (fastai's); mil: each "
                             "sentence read alone and scored, the text's score their "
                             "attention-weighted sum (multiple-instance learning)")
    batch_norm: bool = only("sentiment", default=False,
                            help="standardise the pooled features before dropout (fastai's head)")
    # the data's own label names win (sentiment.train.recipe.train_sentiment); these name
    # IMDB-style labels only
    labels: list[str] = only("sentiment", default_factory=lambda: list(DEFAULT_LABELS),
                             help="names for the two classes of data labelled 0/1 or neg/pos, "
                                  "negative first (e.g. --labels bad good); data with other "
                                  "labels keeps its own names, and this is not used")
    tie_weights: bool = only(*LANGUAGE_MODELS, default=False,
                             help="the output layer shares the embedding's weights")
    output_layer: str = only(*LANGUAGE_MODELS, default="full", choices=OUTPUT_LAYERS,
                             help="a full softmax, or an adaptive one (frequent words cheap)")
    cutoffs: list[int] = only(*LANGUAGE_MODELS, default_factory=lambda: [2_000, 6_000],
                              help="the adaptive softmax's cluster boundaries, by word rank")

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.output_layer not in OUTPUT_LAYERS:
            raise ValueError(
                f"output_layer must be one of {OUTPUT_LAYERS}, got {self.output_layer!r}")
        if len(self.labels) < 2 or len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels must be two or more distinct names, got {self.labels}")


@dataclass
class ModelConfig:
    """Architecture (``core`` + ``head``) and where its first weights come from."""

    core: CoreConfig = field(default_factory=CoreConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    vectors: str | None = only("sentiment", "word-lm", default=DEFAULT_VECTORS,
                               help="GloVe vectors (a name to download, or a file) that start "
                                    "the embedding; none: random")
    encoder: str | None = only("sentiment", default=None,
                               help="a saved model whose core and vocabulary this one starts "
                                    "from (sentiment pretrain's, or a classifier)")
    encoder_directions: str = only("sentiment", default="both", choices=DIRECTIONS,
                                   help="which stacks of a separate-layout encoder to keep: "
                                        "both, or one alone (backward reads from the end)")
    # fine-tuning a trained classifier on more or other data
    encoder_head: bool = only("sentiment", default=False,
                              help="the encoder is a classifier: start the head from its "
                                   "weights too, so that its training continues")

    def __post_init__(self) -> None:
        if self.encoder_directions not in DIRECTIONS:
            raise ValueError(f"encoder_directions must be one of {DIRECTIONS}, "
                             f"got {self.encoder_directions!r}")
        if self.encoder_head and (not self.encoder or self.encoder_directions != "both"):
            raise ValueError("encoder_head needs an encoder (a saved classifier) read in both "
                             "directions")


@dataclass
class TrainConfig:
    """Settings of :func:`sentiment.train.loop.train` and of the run around it."""

    output: str = option("the run's folder: model, checkpoint, metrics, report",
                         default="runs/sentiment", group="output")
    epochs: int = option("epochs at most (see --patience, --max-minutes)", default=10)
    optimizer: str = option("the optimizer", default="adam", choices=OPTIMIZERS)
    lr: float = option("the learning rate", default=1e-3)
    weight_decay: float = option("L2 weight decay", default=0.0)
    schedule: str = option("how the learning rate moves over the run, after --warmup",
                           default="constant", choices=SCHEDULES)
    warmup: float = option("share of all steps spent warming the learning rate up from 0",
                           default=0.0)
    layer_lr_decay: float = only("sentiment", default=1.0,
                                 help="each lower core layer (and the embedding) trains at lr "
                                      "times this to the power of its depth (fine-tuning)")
    unfreeze: bool = only("sentiment", default=False,
                          help="gradual unfreezing: the head first, then one more core layer "
                               "per epoch")
    freeze_embeddings: bool = option("keep the embedding as it starts", default=False)
    clip: float = option("gradients are clipped to this norm", default=1.0)
    # Miyato et al., 2017: the pushed loss is added
    adversarial: float = only("sentiment", default=0.0,
                              help="adversarial training: embeddings pushed up their loss's "
                                   "gradient by this share of their norm; 0: off")
    # Miyato et al., 2017
    virtual_adversarial: float = only("sentiment", default=0.0,
                                      help="each step also pushes unlabelled reviews by this "
                                           "share of their norm where the prediction changes "
                                           "most, and learns to keep it; 0: off")
    # Off by default: from scratch, 0.998 with dropout 0.3 / 0.2 lost to no average with 0.5 / 0.5
    # on validation (BENCHMARKS.md, accuracy); imdb-fast and the learning curve's fine-tuned
    # runs pass --ema-decay 0.998
    ema_decay: float = option("a moving average of the weights with this decay is what "
                              "validation judges and the run keeps; 0: off", default=0.0)
    patience: int | None = option("stop after this many epochs without a better validation "
                                  "figure; none: never", default=3)
    device: str = option("auto (CUDA when present), cpu, cuda or cuda:N", default="auto")
    # see sentiment.runtime.precision.autocast_dtype
    mixed_precision: bool = option("float16 autocast on CUDA, bfloat16 on CPUs that multiply "
                                   "it in hardware", default=True)
    seed: int = option("seeds the weights, dropout and batch order, and the validation "
                       "split unless --split-seed is given", default=0)
    resume: bool = option("continue the run in --output from its last checkpoint",
                          default=True, group="output")
    progress: bool = option("show progress bars (datasets' included)", default=True,
                            group="output")
    max_minutes: float | None = option("no epoch starts that would end past this many minutes",
                                       default=None)
    teacher: str | None = only("sentiment", default=None,
                               help="distillation: a teacher folder (sentiment teacher) whose "
                                    "soft labels on the unlabelled reviews join the training "
                                    "reviews")
    temperature: float = only("sentiment", default=1.0,
                              help="the teacher's log-odds are divided by this (> 1: softer "
                                   "labels)")
    hard_weight: float = only("sentiment", default=0.5,
                              help="a labelled review's target: this share of its label, the "
                                   "rest the teacher's")
    # short texts, which the reviews (~230 words) do not teach, are what people type first
    crops: int = only("sentiment", default=0,
                      help="short crops (1-3 sentences) of the unlabelled reviews that join "
                           "the training set with the teacher's labels (needs --teacher)")
    # sentiment.train.sentences: what one sentence says, learnt from the reviews rather than
    # from templates
    sentences: int = only("sentiment", default=0,
                          help="sentences of the unlabelled reviews that join the training "
                               "set, each with the teacher's reading of it in its review "
                               "(needs --teacher)")
    # the in-context sentences without the review-level targets: a sentence scorer taught by
    # review labels (--pooling mil) lost its sentence gain to the teacher's soft review labels
    distil_reviews: bool = only("sentiment", default=True,
                                help="the teacher also labels the reviews (the labelled ones "
                                     "mixed with their labels, the unlabelled ones joining); "
                                     "--no-distil-reviews: the labelled reviews keep their own "
                                     "labels and the teacher teaches only --sentences and "
                                     "--crops")
    # sentiment.train.phrases: the rules of one sentence that IMDB's review labels do not teach
    phrases: int = only("sentiment", default=0,
                        help="template sentences (statements, negations, contrasts with 'but') "
                             "that join the training set with their own labels")
    evaluate: bool = only("sentiment", default=True, group="output",
                          help="score the test split and write the report after training")
    baseline: bool = only("sentiment", default=True, group="output",
                          help="fit the linear baselines beside the model in the report")

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.lr <= 0 or self.clip <= 0:
            raise ValueError("lr and clip must be positive")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"warmup must be in [0, 1), got {self.warmup}")
        if not 0 < self.layer_lr_decay <= 1:
            raise ValueError(f"layer_lr_decay must be in (0, 1], got {self.layer_lr_decay}")
        for name in ("adversarial", "virtual_adversarial", "ema_decay"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not self.temperature > 0 or not 0 <= self.hard_weight <= 1:
            raise ValueError(f"temperature must be > 0 and hard_weight in [0, 1], got "
                             f"{self.temperature} and {self.hard_weight}")
        if self.phrases < 0:
            raise ValueError(f"phrases must be >= 0, got {self.phrases}")
        for name in ("crops", "sentences"):
            if getattr(self, name) < 0 or (getattr(self, name) and not self.teacher):
                raise ValueError(f"{name} must be >= 0 and needs a teacher, got "
                                 f"{getattr(self, name)} with teacher {self.teacher!r}")
        if self.teacher and not self.distil_reviews and not (self.sentences or self.crops):
            raise ValueError("--no-distil-reviews leaves the teacher only --sentences and "
                             "--crops to teach: give one of them")


DATA_CLASSES = {"sentiment": ReviewData, "word-lm": ReviewData, "char-lm": TextData}


@dataclass
class Config:
    """A whole run: what the model reads, what it is, how it trains."""

    task: str
    data: DataConfig
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; expected one of {list(TASKS)}")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def split_seed(self) -> int:
        """The seed of the validation (and carved test) split: ``data.split_seed``, else
        ``train.seed``."""
        own = getattr(self.data, "split_seed", None)
        return self.train.seed if own is None else own

    @classmethod
    def from_dict(cls, values: dict) -> Config:
        """The config written by :meth:`to_dict` (a model folder's ``config.json``)."""
        version = values.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(
                f"config format_version {version!r} is not {FORMAT_VERSION}: this model folder "
                "was written by another version of sentiment; train it again")
        task = values.get("task")
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r} in model config; expected one of "
                             f"{list(TASKS)}")
        model = values.get("model", {})
        return cls(
            task=task,
            data=_build(DATA_CLASSES[task], values.get("data", {})),
            model=ModelConfig(
                core=_build(CoreConfig, model.get("core", {})),
                head=_build(HeadConfig, model.get("head", {})),
                **{k: v for k, v in model.items() if k not in ("core", "head")},
            ),
            train=_build(TrainConfig, values.get("train", {})),
        )


def _build(cls, values: dict):
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s) {sorted(unknown)}")
    return cls(**values)


def sections(config: Config) -> dict[str, object]:
    """The leaf dataclasses of ``config`` by path: data, model.core, model.head, model, train."""
    return {"data": config.data, "model.core": config.model.core,
            "model.head": config.model.head, "model": config.model, "train": config.train}


def option_name(f: dataclasses.Field) -> str:
    """The name of field ``f`` as an option: ``--data`` sets ``data.source`` (a review source),
    ``--text`` the char LM's text files; every other field is its own name."""
    return f.metadata.get("flag", f.name)


def leaf_fields(config: Config, task_only: bool = False
                ) -> dict[str, tuple[object, dataclasses.Field]]:
    """Every settable field (not a nested dataclass) by option name, with the section that holds
    it; ``task_only``: only those ``config.task`` reads (its command's flags). Names are unique
    across sections; a repeated name is a bug caught here."""
    found: dict[str, tuple[object, dataclasses.Field]] = {}
    for section in sections(config).values():
        for f in fields(section):
            if dataclasses.is_dataclass(getattr(section, f.name)):
                continue
            if task_only and config.task not in f.metadata.get("tasks", TASKS):
                continue
            name = option_name(f)
            if name in found:
                raise AssertionError(f"config option {name!r} is declared twice")
            found[name] = (section, f)
    return found


def field_type(section, f: dataclasses.Field):
    """The resolved type annotation of field ``f`` of ``section``'s class."""
    return typing.get_type_hints(type(section))[f.name]


def apply_overrides(config: Config, overrides: dict) -> Config:
    """Set flat ``name=value`` overrides on their sections; re-validates every section.
    An unknown name raises a ValueError that names it."""
    where = leaf_fields(config)
    changes: dict[int, dict] = {}
    for name, value in overrides.items():
        if name not in where:
            raise ValueError(f"unknown option {name!r}")
        section, f = where[name]
        changes.setdefault(id(section), {})[f.name] = value
    rebuilt = {path: dataclasses.replace(section, **changes.get(id(section), {}))
               for path, section in sections(config).items()}
    model = dataclasses.replace(rebuilt["model"], core=rebuilt["model.core"],
                                head=rebuilt["model.head"])
    return Config(config.task, rebuilt["data"], model, rebuilt["train"])


def preset_config(task: str, presets: dict[str, dict], preset: str = "default",
                  **overrides) -> Config:
    """``task``'s defaults, then ``presets[preset]``, then ``overrides`` (flat field names)."""
    if preset not in presets:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(presets)}")
    base = Config(task, DATA_CLASSES[task]())
    return apply_overrides(base, {**presets["default"], **presets[preset], **overrides})
