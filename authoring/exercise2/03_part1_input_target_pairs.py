# %% [markdown]
# ---
# ## Part 1: input and target pairs (3 points)
#
# A causal language model reads tokens left to right and, at every position, predicts the
# **next** token. So training and evaluation data are the same sequence twice, offset by one:
#
# ```
# token ids : 12  7  30  5  9
# inputs    : 12  7  30  5
# targets   :  7 30   5  9
# ```
#
# `targets[t]` is the token that follows `inputs[t]`. The very first token of a text is never a
# target: nothing comes before it, so the model has nothing to predict it from.
#
# A PyTorch `Dataset` hands out one example at a time; a `DataLoader` stacks examples into
# batches. Write `NextTokenDataset`: it cuts a long list of token ids into consecutive,
# **non-overlapping** chunks of `seq_len` (input, target) pairs, so every token after the first
# is a target exactly once. Chunk `i` covers token ids `i*seq_len` to `(i+1)*seq_len` inclusive
# (that is `seq_len + 1` ids: the inputs are the first `seq_len`, the targets the last `seq_len`).
# Leftover ids at the end that cannot fill a whole chunk are dropped, so all examples have the
# same length and stack into a batch without padding.

# %% [solution id=next_token_dataset]
class NextTokenDataset(Dataset):
    """Consecutive (inputs, targets) chunks of a token sequence, targets shifted by one.

    token_ids: a list of ints or a 1-D tensor of token ids.
    seq_len: tokens per example (an int >= 1).

    ``len(dataset)`` is ``(len(token_ids) - 1) // seq_len``. ``dataset[i]`` returns
    ``(inputs, targets)``, two ``torch.long`` tensors of shape ``[seq_len]``, where
    ``inputs = token_ids[i*seq_len : (i+1)*seq_len]`` and
    ``targets = token_ids[i*seq_len + 1 : (i+1)*seq_len + 1]``.
    An index ``>= len(dataset)`` raises IndexError; a negative index either counts from the end,
    as for a list, or raises IndexError.
    Raises ValueError when ``seq_len < 1`` or when there are fewer than ``seq_len + 1`` ids.
    """

    def __init__(self, token_ids, seq_len):
        ### BEGIN SOLUTION
        ids = torch.as_tensor(token_ids, dtype=torch.long).flatten()
        if int(seq_len) < 1:
            raise ValueError(f"seq_len must be at least 1, got {seq_len}")
        if ids.numel() < int(seq_len) + 1:
            raise ValueError(f"need at least seq_len + 1 = {int(seq_len) + 1} token ids, got {ids.numel()}")
        self.ids = ids
        self.seq_len = int(seq_len)
        ### END SOLUTION

    def __len__(self):
        ### BEGIN SOLUTION
        return (self.ids.numel() - 1) // self.seq_len
        ### END SOLUTION

    def __getitem__(self, index):
        ### BEGIN SOLUTION
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} is outside 0..{len(self) - 1}")
        start = index * self.seq_len
        chunk = self.ids[start:start + self.seq_len + 1]
        return chunk[:-1].clone(), chunk[1:].clone()
        ### END SOLUTION

# %% [markdown]
# **Try it.** Ten ids and `seq_len=3` give `(10 - 1) // 3 = 3` examples; the first should be
# `inputs=[0, 1, 2]`, `targets=[1, 2, 3]`. The real text (two evaluation paragraphs, about 430
# tokens) gives batches of shape `[4, 32]` for both inputs and targets.

# %% [code]
token_ids = tokenizer("\n\n".join(eval_texts(2))).input_ids  # used again below
toy = NextTokenDataset(list(range(10)), seq_len=3)
print("examples:", len(toy), "| first:", toy[0])

loader = DataLoader(NextTokenDataset(token_ids, seq_len=32), batch_size=4, shuffle=False)
inputs, targets = next(iter(loader))
print(f"{len(token_ids)} token ids -> {len(loader.dataset)} examples -> {len(loader)} batches")
print("batch shapes:", tuple(inputs.shape), tuple(targets.shape))

# %% [tests id=test_next_token_dataset points=1]
"""Check that NextTokenDataset shifts targets by one and has the documented length."""
_ds = NextTokenDataset(list(range(10)), seq_len=3)
assert len(_ds) == 3, f"10 ids with seq_len=3 give (10 - 1) // 3 = 3 examples, got len {len(_ds)}"
_x, _y = _ds[0]
assert isinstance(_x, torch.Tensor) and isinstance(_y, torch.Tensor), "return two tensors (inputs, targets)"
assert _x.tolist() == [0, 1, 2], f"inputs of example 0 should be [0, 1, 2], got {_x.tolist()}"
assert _y.tolist() == [1, 2, 3], (
    f"targets of example 0 should be [1, 2, 3] (the inputs moved one step ahead), got {_y.tolist()}")
assert _ds[2][0].tolist() == [6, 7, 8] and _ds[2][1].tolist() == [7, 8, 9], (
    "example 2 should be inputs [6, 7, 8], targets [7, 8, 9]: chunks do not overlap")
try:
    NextTokenDataset([1, 2, 3], seq_len=3)
except ValueError:
    pass
else:
    raise AssertionError("3 ids cannot make one example of seq_len=3 (it needs 4): raise ValueError")
print("NextTokenDataset: visible tests passed")

# %% [tests id=test_next_token_dataset_hidden points=2]
"""Check NextTokenDataset on a longer sequence, with a tensor input, through a DataLoader, and at its edges."""
### BEGIN HIDDEN TESTS
# include: trusted_prelude

from torch.utils.data import DataLoader as _DataLoader

with _raw():
    _LONG = _T.dtype.__get__(_VF.tensor([1]))            # int64, read off a fresh tensor

def _dtype(t):
    with _raw():
        return _T.dtype.__get__(t)

_ids, _k = [], 0
while _k < 103:                                           # 103 distinct ids, no library involved
    _ids.append((_k * 37 + 11) % 1000)
    _k += 1
_checked = 0
for _source in (_ids, _VF.tensor(_ids)):
    _ds = NextTokenDataset(_source, seq_len=10)
    _n = _int(_ds.__len__())
    assert _n == 10, f"103 ids with seq_len=10 give (103 - 1) // 10 = 10 examples, got {_n}"
    _i = 0
    while _i < 10:
        _x, _y = _ds[_i]
        assert _dtype(_x) is _LONG and _dtype(_y) is _LONG, "inputs and targets must be torch.long tensors"
        _xv, _yv = _vals(_x), _vals(_y)
        assert _type(_xv) is _list and _list.__len__(_xv) == 10 and _list.__len__(_yv) == 10, (
            f"example {_i}: shapes must be [seq_len]")
        assert _xv == _ids[_i * 10:_i * 10 + 10], f"example {_i}: wrong inputs"
        assert _yv == _ids[_i * 10 + 1:_i * 10 + 11], f"example {_i}: targets are not inputs shifted by one"
        _i += 1
        _checked += 1
assert _checked == 20, "not every example was checked"
# Every token after the first is a target exactly once, in order.
_all_targets, _i = [], 0
while _i < 10:
    _all_targets += _vals(_ds[_i][1])
    _i += 1
assert _all_targets == _ids[1:101], "targets must cover ids[1:], each once, in order"
_batches = [_b for _b in _DataLoader(NextTokenDataset(_ids, seq_len=10), batch_size=4, shuffle=False)]
assert [[_list.__len__(_row) for _row in _vals(_b[0])] for _b in _batches] == [[10] * 4, [10] * 4, [10] * 2], (
    "DataLoader batches have wrong shapes")
assert _vals(_batches[1][1])[0] == _ids[41:51], "batch 1, row 0 has wrong targets"
assert _int(NextTokenDataset([0, 1, 2, 3, 4], seq_len=4).__len__()) == 1, "5 ids with seq_len=4 give exactly one example"
try:
    NextTokenDataset([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], seq_len=3)[3]
except IndexError:
    pass
else:
    raise AssertionError("index 3 of a 3-example dataset must raise IndexError")
# A length that is a multiple of seq_len: the last id has no target after it, so it is dropped.
assert _int(NextTokenDataset(_ids[:100], seq_len=10).__len__()) == 9, (
    "100 ids with seq_len=10 give (100 - 1) // 10 = 9 examples: a 10th would have no target for its last input")
# A negative index counts from the end, as for a list, or raises IndexError.
_ds = NextTokenDataset(_ids[:31], seq_len=10)             # 3 examples
try:
    _x, _y = _ds[-1]
except IndexError:
    pass
else:
    assert _vals(_x) == _ids[20:30] and _vals(_y) == _ids[21:31], (
        "dataset[-1] must be the last example (as for a list) or raise IndexError")
try:
    _ds[-4]
except IndexError:
    pass
else:
    raise AssertionError("index -4 of a 3-example dataset must raise IndexError")
for _bad in (0, -2):
    try:
        NextTokenDataset(_ids, seq_len=_bad)
    except ValueError:
        continue
    raise AssertionError(f"seq_len={_bad}: raise ValueError (seq_len must be at least 1)")
### END HIDDEN TESTS

