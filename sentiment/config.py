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
OUTPUT_LAYERS = ("full", "adaptive")
POOLINGS = ("final", "concat")
DIRECTIONS = ("both", "forward", "backward")
LANGUAGE_MODELS = ("word-lm", "char-lm")
BAD_ROWS = ("error", "skip")  # a file row of the wrong shape: stop naming it, or skip it
ENCODING_ERRORS = ("replace", "strict")  # invalid UTF-8 in a text: U+FFFD, or stop
ENSEMBLE_FILE = "ensemble.json"  # what makes a folder an ensemble (sentiment.kinds.checkpoint)
ONNX_FILE = "model.onnx"  # what makes a folder an ONNX export (sentiment.kinds.onnx)
RNN_TYPE_NAMES = ("lstm", "gru", "rnn")  # torch.nn.LSTM, GRU, RNN (sentiment.nn.core.RNN_TYPES)


def only(*tasks: str, **kwargs):
    """A field that only ``tasks`` read: the other tasks' commands offer no flag for it."""
    metadata = {**kwargs.pop("metadata", {}), "tasks": tasks}
    return field(**kwargs, metadata=metadata)


PADDING_MODES = ("auto", "exact", "packed", "padded")
KEEP = ("start", "end")  # the end of a long text that ReviewData.max_length keeps
LAYOUTS = ("joint", "separate")


@dataclass
class CoreConfig:
    """Architecture of :class:`sentiment.nn.core.RNNCore`."""

    # set from the vocabulary when the model is built (no task offers a flag for it)
    vocab_size: int = field(default=0, metadata={"tasks": ()})
    embed_dim: int = 100
    hidden_dim: int = 256
    num_layers: int = 2
    rnn_type: str = field(default="lstm", metadata={"choices": RNN_TYPE_NAMES})
    bidirectional: bool = True
    layout: str = field(default="joint", metadata={"choices": LAYOUTS})
    # a one-direction core that reads each text from its end (the backward stack of a
    # separate-layout encoder, fine-tuned alone)
    reverse: bool = field(default=False, metadata={"tasks": ("sentiment",)})
    # between layers and on the embeddings. From scratch on IMDB, chosen on validation only:
    # 0.5 / 0.5 without the weight average 0.9220 against 0.3 / 0.2 with it 0.9200, test 0.9075
    # read once (BENCHMARKS.md, accuracy). Fine-tuning an encoder passes 0.3 / 0.2
    # (docs/pretraining.md)
    dropout: float = 0.5
    input_dropout: float = 0.5
    input_type: str = field(default="embedding", metadata={"choices": ("embedding", "onehot")})
    pad_index: int | None = field(default=0, metadata={"tasks": ()})  # from the vocabulary
    padding_mode: str = field(default="auto", compare=False,
                              metadata={"choices": PADDING_MODES})

    def __post_init__(self) -> None:
        if self.rnn_type not in RNN_TYPE_NAMES:
            raise ValueError(f"rnn_type must be one of {sorted(RNN_TYPE_NAMES)}, "
                             f"got {self.rnn_type!r}")
        if self.input_type not in ("embedding", "onehot"):
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


@dataclass
class DataConfig:
    """Settings every task's data has."""

    valid_fraction: float = 0.1
    batch_size: int = 64
    num_steps: int = only(*LANGUAGE_MODELS, default=100)  # window length of LM streams

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

    source: str = field(default=DEFAULT_SOURCE, metadata={"flag": "data"})
    text_column: str = "text"
    label_column: str = "label"
    # a CSV row of the wrong field count: stop with its line number, or skip it; invalid UTF-8
    # bytes: replace them by U+FFFD, or stop
    on_bad_rows: str = field(default="error", metadata={"choices": BAD_ROWS})
    encoding_errors: str = field(default="replace", metadata={"choices": ENCODING_ERRORS})
    test_fraction: float = 0.2  # a single file: the share carved (stratified, seeded) for test
    train_split: str = "train"  # a hub dataset's split names
    test_split: str = "test"
    lowercase: bool = True
    max_vocab: int = 10_000
    min_freq: int = 1
    max_length: int | None = None
    # which tokens of a text longer than max_length are read: its first ("start") or its last
    # ("end": a review's verdict is mostly at its end; BENCHMARKS.md, inference)
    keep: str = field(default="start", metadata={"choices": KEEP})
    # token budget of a batch: long reviews come in fewer rows, so a full IMDB epoch peaks at
    # 1.6 GB of RSS instead of 4.8 (BENCHMARKS.md, training speed and memory)
    max_tokens: int | None = 16_384
    train_limit: int | None = None
    test_limit: int | None = only("sentiment", default=None)
    # word-lm and sentiment with train.virtual_adversarial: unlabelled text of your own (a
    # .txt/.csv/.jsonl/.parquet file, a folder, a hub id) in unlabelled_column; default: the
    # unsupervised split beside source
    unlabelled: str | None = None
    unlabelled_column: str = "text"
    unlabelled_limit: int | None = None  # use only this many unlabelled reviews
    lm_valid_reviews: int = only("word-lm", default=1_000)  # held out for perplexity
    # word-lm: read whole reviews (bucketed, as the classifier reads them) or random windows of
    # num_steps words from the joined stream, each from a zero state
    lm_sequences: str = only("word-lm", default="reviews",
                             metadata={"choices": ("reviews", "windows")})
    bucket: bool = True
    num_proc: int | None = None
    # the seed that carves validation (and a single file's test split); None: train.seed. Set it
    # to train replicates of one recipe on one split: --seed 1 --split-seed 0 draws other
    # dropout masks, batch order and new weights, and reads the same validation reviews (a
    # teacher fitted on them accepts it)
    split_seed: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lm_sequences not in ("reviews", "windows"):
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

    source: list[str] = field(default_factory=list, metadata={"flag": "text"})
    mode: str = field(default="raw", metadata={"choices": TEXT_MODES})
    sampling: str = field(default="sequential", metadata={"choices": ("sequential", "random")})


@dataclass
class HeadConfig:
    """The task head on the core. ``labels`` and ``pooling`` are the classifier's;
    ``tie_weights``, ``output_layer`` and ``cutoffs`` the language model's."""

    output_dropout: float = 0.5
    pooling: str = only("sentiment", default="concat", metadata={"choices": POOLINGS})
    # standardise the pooled features before dropout (fastai's head)
    batch_norm: bool = only("sentiment", default=False)
    labels: list[str] = only("sentiment", default_factory=lambda: list(DEFAULT_LABELS))
    tie_weights: bool = only(*LANGUAGE_MODELS, default=False)
    output_layer: str = only(*LANGUAGE_MODELS, default="full",
                             metadata={"choices": OUTPUT_LAYERS})
    cutoffs: list[int] = only(*LANGUAGE_MODELS, default_factory=lambda: [2_000, 6_000])

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
    # GloVe name or file initialising the embedding
    vectors: str | None = only("sentiment", "word-lm", default=DEFAULT_VECTORS)
    # a saved model whose core (and vocabulary) this model starts from
    encoder: str | None = only("sentiment", default=None)
    # which of a separate-layout encoder's stacks the classifier keeps: both, or one of them
    # alone (a one-direction core; "backward" reads each text from its end)
    encoder_directions: str = only("sentiment", default="both", metadata={"choices": DIRECTIONS})
    # the encoder is a classifier with this head: start the head from its weights too, so that
    # its training continues (fine-tuning a trained classifier on more or other data)
    encoder_head: bool = only("sentiment", default=False)

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

    output: str = "runs/sentiment"
    epochs: int = 10
    optimizer: str = field(default="adam", metadata={"choices": ("adam", "sgd")})
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = field(default="constant", metadata={"choices": SCHEDULES})
    warmup: float = 0.0  # share of all steps spent warming the learning rate up from 0
    # each lower core layer (and the embedding) trains at lr * this^k
    layer_lr_decay: float = only("sentiment", default=1.0)
    # gradual unfreezing: head first, then one more core layer per epoch
    unfreeze: bool = only("sentiment", default=False)
    freeze_embeddings: bool = False
    clip: float = 1.0
    # adversarial training on the word embeddings (Miyato et al., 2017): each text's embeddings
    # pushed up its loss's gradient by this share of their own norm, the pushed loss added; 0: off
    adversarial: float = only("sentiment", default=0.0)
    # virtual adversarial training (Miyato et al., 2017): each step also pushes a batch of
    # unlabelled reviews (data.unlabelled, else beside data.source) by this share of their norm
    # where the prediction changes most and learns to keep it; 0: off
    virtual_adversarial: float = only("sentiment", default=0.0)
    # an exponential moving average of the weights (Polyak averaging), updated after every
    # optimizer step with this decay, is what validation judges and what the run keeps; 0: off.
    # Off by default: from scratch, 0.998 with dropout 0.3 / 0.2 lost to no average with 0.5 / 0.5
    # on validation (BENCHMARKS.md, accuracy); imdb-fast and the learning curve's fine-tuned
    # runs pass --ema-decay 0.998
    ema_decay: float = 0.0
    patience: int | None = 3
    device: str = "auto"
    mixed_precision: bool = True  # see sentiment.runtime.precision.autocast_dtype
    seed: int = 0
    resume: bool = True
    progress: bool = True
    max_minutes: float | None = None
    # distillation: a teacher folder (sentiment teacher) whose soft labels on the unlabelled
    # reviews (data.unlabelled, else beside data.source) join the training reviews
    teacher: str | None = only("sentiment", default=None)
    # the teacher's log-odds are divided by this before the sigmoid (> 1: softer labels)
    temperature: float = only("sentiment", default=1.0)
    # a labelled review's target: this share of its label plus the rest of the teacher's
    hard_weight: float = only("sentiment", default=0.5)
    # this many short crops of the unlabelled reviews (one to three consecutive sentences) join
    # the distillation set with the teacher's soft labels: short texts, which the reviews
    # (~230 words) do not teach, are what people type first
    crops: int = only("sentiment", default=0)
    # this many sentences of the unlabelled reviews join the distillation set, each with the
    # teacher's reading of it in its review's context (sentiment.train.sentences): what one
    # sentence says, learnt from the reviews rather than from templates
    sentences: int = only("sentiment", default=0)
    # this many template-made short sentences (sentiment.train.phrases: statements, negated ones,
    # contrasts with "but") join the training set with their own labels: the rules of one
    # sentence that IMDB's review labels do not teach
    phrases: int = only("sentiment", default=0)
    # score the test split and write the report after training
    evaluate: bool = only("sentiment", default=True)
    # fit the linear baselines beside the model in the report
    baseline: bool = only("sentiment", default=True)

    def __post_init__(self) -> None:
        if self.optimizer not in ("adam", "sgd"):
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
