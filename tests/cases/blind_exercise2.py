"""Wrong answers written by a blind attempt at exercise2 (someone given only what a student receives,
December 2026): each passed every visible test; each must lose points in the hidden tests listed."""
from __future__ import annotations

from tests.cases.table import Table

_wrong = Table("exercise2").wrong
_correct = Table.correct

CASES = [
    # Part 1 `NextTokenDataset`: P1 len uses len(ids)//seq_len, no bounds check
    _wrong('blind_p1_len_uses_len_ids_seq_len_no_bounds_check', 'next_token_dataset', r'''
class NextTokenDataset(Dataset):
    def __init__(self, token_ids, seq_len):
        if seq_len < 1 or len(token_ids) < seq_len + 1:
            raise ValueError("too few ids")
        self.ids = torch.as_tensor(token_ids, dtype=torch.long)
        self.seq_len = seq_len
    def __len__(self):
        return len(self.ids) // self.seq_len          # wrong: should be (len - 1) // seq_len
    def __getitem__(self, i):
        s = i * self.seq_len                          # no IndexError: short/empty tensors past the end
        return self.ids[s:s + self.seq_len], self.ids[s + 1:s + self.seq_len + 1]
''', ['test_next_token_dataset_hidden']),
    # Part 2 `cross_entropy_from_logits`: P2 log(softmax)
    _wrong('blind_p2_log_softmax', 'cross_entropy_from_logits', r'''
def cross_entropy_from_logits(logits, targets, ignore_index=-100):
    logp = torch.log(torch.softmax(logits, dim=-1))      # -inf for underflowed probabilities
    keep = targets != ignore_index
    if not keep.any():
        raise ValueError("nothing counts")
    picked = logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return -(picked * keep).sum() / keep.sum()
''', ['test_cross_entropy_from_logits_hidden']),
    # Part 2 `cross_entropy_from_logits`: P2 hard-coded -100
    _wrong('blind_p2_hard_coded_100', 'cross_entropy_from_logits', r'''
def cross_entropy_from_logits(logits, targets, ignore_index=-100):
    keep = targets != -100                               # ignores the ignore_index argument
    if not keep.any():
        raise ValueError("nothing counts")
    logp = torch.log_softmax(logits, dim=-1)
    picked = logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return -(picked * keep).sum() / keep.sum()
''', ['test_cross_entropy_from_logits_hidden']),
    # Part 2 `cross_entropy_from_logits`: P2 detached result
    _wrong('blind_p2_detached_result', 'cross_entropy_from_logits', r'''
def cross_entropy_from_logits(logits, targets, ignore_index=-100):
    keep = targets != ignore_index
    if not keep.any():
        raise ValueError("nothing counts")
    logp = torch.log_softmax(logits, dim=-1)
    picked = logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return torch.tensor((-(picked * keep).sum() / keep.sum()).item())   # 0-dim, but cut off from the graph
''', ['test_cross_entropy_from_logits_hidden']),
    # Part 3 `train_step`: P3 no zero_grad
    _wrong('blind_p3_no_zero_grad', 'train_step', r'''
def train_step(model, batch, optimizer):
    inputs, targets = batch
    model.train()
    logits = model(input_ids=inputs).logits
    loss = cross_entropy_from_logits(logits, targets)
    loss.backward()                                      # gradients accumulate across calls
    optimizer.step()
    return loss.item()
''', ['test_train_step_hidden']),
    # Part 3 `train_step`: P3 no model.train()
    _wrong('blind_p3_no_model_train', 'train_step', r'''
def train_step(model, batch, optimizer):
    inputs, targets = batch
    optimizer.zero_grad()
    logits = model(input_ids=inputs).logits              # model stays in whatever mode it came in
    loss = cross_entropy_from_logits(logits, targets)
    loss.backward()
    optimizer.step()
    return loss.item()
''', ['test_train_step_hidden']),
    # Part 3 `train_step`: P3 loss after the step
    _wrong('blind_p3_loss_after_the_step', 'train_step', r'''
def train_step(model, batch, optimizer):
    inputs, targets = batch
    model.train()
    optimizer.zero_grad()
    loss = cross_entropy_from_logits(model(input_ids=inputs).logits, targets)
    loss.backward()
    optimizer.step()
    with torch.no_grad():                                # returns the post-update loss
        return float(cross_entropy_from_logits(model(input_ids=inputs).logits, targets))
''', ['test_train_step_hidden']),
    # Part 4 `evaluate_perplexity`: P4 no inference_mode / ignores device / no eval()
    _wrong('blind_p4_no_inference_mode_ignores_device_no_eval', 'evaluate_perplexity', r'''
def evaluate_perplexity(model, tokenizer, texts, batch_size, max_length=None, device=None):
    if not texts:
        raise ValueError("no texts")
    device = next(model.parameters()).device             # ignores the device argument
    total, n_tok = 0.0, 0
    for s in range(0, len(texts), batch_size):           # gradients on, mode untouched
        enc = tokenizer(texts[s:s + batch_size], padding=True, padding_side="right", return_tensors="pt",
                        truncation=max_length is not None, max_length=max_length).to(device)
        labels = enc.input_ids.masked_fill(enc.attention_mask == 0, -100)
        out = model(**enc, labels=labels)
        n = int((labels[:, 1:] != -100).sum())
        total += out.loss.item() * n
        n_tok += n
    if n_tok == 0:
        raise ValueError("nothing to predict")
    avg = total / n_tok
    return {"avg_loss": avg, "perplexity": math.exp(avg), "n_tokens": n_tok}
''', ['test_evaluate_perplexity_hidden', 'test_evaluate_perplexity_no_grad']),
    # Part 5 `sliding_window_perplexity`: P5 mean of per-window losses
    _wrong('blind_p5_mean_of_per_window_losses', 'sliding_window_perplexity', r'''
def sliding_window_perplexity(model, tokenizer, text, max_length, stride):
    if not 1 <= stride <= max_length:
        raise ValueError("bad stride")
    ids = tokenizer(text, return_tensors="pt").input_ids
    n = ids.shape[1]
    if n < 2:
        raise ValueError("too short")
    model.eval()
    losses, n_tok, prev_end = [], 0, 0
    with torch.no_grad():
        for begin in range(0, n, stride):
            end = min(begin + max_length, n)
            labels = ids[:, begin:end].clone()
            labels[:, :max(prev_end - begin, 0)] = -100
            out = model(input_ids=ids[:, begin:end], labels=labels)
            losses.append(out.loss.item())               # per-window mean
            n_tok += int((labels[:, 1:] != -100).sum())
            prev_end = end
            if end == n:
                break
    avg = sum(losses) / len(losses)                      # windows weighted equally, not tokens
    return {"avg_loss": avg, "perplexity": math.exp(avg), "n_tokens": n_tok}
''', ['test_sliding_window_perplexity_hidden']),
    # Part 5 `sliding_window_perplexity`: P5 no no_grad / no eval()
    _wrong('blind_p5_no_no_grad_no_eval', 'sliding_window_perplexity', r'''
def sliding_window_perplexity(model, tokenizer, text, max_length, stride):
    if not 1 <= stride <= max_length:
        raise ValueError("bad stride")
    ids = tokenizer(text, return_tensors="pt").input_ids
    n = ids.shape[1]
    if n < 2:
        raise ValueError("too short")
    total, n_tok, prev_end = 0.0, 0, 0
    for begin in range(0, n, stride):                    # gradients recorded, mode untouched
        end = min(begin + max_length, n)
        labels = ids[:, begin:end].clone()
        labels[:, :max(prev_end - begin, 0)] = -100
        out = model(input_ids=ids[:, begin:end], labels=labels)
        k = int((labels[:, 1:] != -100).sum())
        total += out.loss.item() * k
        n_tok += k
        prev_end = end
        if end == n:
            break
    avg = total / n_tok
    return {"avg_loss": avg, "perplexity": math.exp(avg), "n_tokens": n_tok}
''', ['test_sliding_window_perplexity_hidden']),
    # The same attempt's right answers: each of its cells alone, with the solution everywhere else.
    _correct('blind_right_next_token_dataset', 'next_token_dataset', r'''
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
        seq_len = int(seq_len)
        if seq_len < 1:
            raise ValueError(f"seq_len must be >= 1, got {seq_len}")
        ids = torch.as_tensor(token_ids, dtype=torch.long).reshape(-1)
        n_examples = (ids.numel() - 1) // seq_len
        if n_examples < 1:
            raise ValueError(f"need at least seq_len + 1 = {seq_len + 1} token ids, got {ids.numel()}")
        # Precompute both views as [n_examples, seq_len] matrices: row i is example i.
        used = n_examples * seq_len
        self._inputs = ids[:used].view(n_examples, seq_len).clone()
        self._targets = ids[1:used + 1].reshape(n_examples, seq_len).clone()

    def __len__(self):
        return self._inputs.shape[0]

    def __getitem__(self, index):
        index = int(index)
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index out of range for a dataset of {n} examples")
        return self._inputs[index], self._targets[index]
'''),
    _correct('blind_right_cross_entropy_from_logits', 'cross_entropy_from_logits', r'''
def cross_entropy_from_logits(logits, targets, ignore_index=-100):
    """Mean cross-entropy (nats per counted position), computed from log-softmax.

    logits: float tensor ``[..., vocab]`` (e.g. ``[batch, seq, vocab]`` or ``[N, vocab]``).
    targets: integer tensor with the shape of ``logits`` minus its last dimension, on the same
        device as ``logits``.
    ignore_index: positions whose target equals it are excluded from sum and count.

    Returns a 0-dim tensor (so it can be back-propagated), equal to
    ``torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1),
    ignore_index=ignore_index)`` within float tolerance.
    Raises ValueError when no position counts (all targets equal ``ignore_index``).
    """
    vocab = logits.shape[-1]
    flat_logits = logits.reshape(-1, vocab)
    flat_targets = targets.reshape(-1).long()
    keep = flat_targets != ignore_index
    n_counted = int(keep.sum())
    if n_counted == 0:
        raise ValueError("no position counts: every target equals ignore_index")
    # Select the counted rows first, then -log p(target) = logsumexp(z) - z[target]
    # (the log-softmax identity, written without forming probabilities).
    z = flat_logits[keep]
    t = flat_targets[keep]
    nll = torch.logsumexp(z, dim=-1) - z.gather(-1, t[:, None]).squeeze(-1)
    return nll.sum() / n_counted
'''),
    _correct('blind_right_train_step', 'train_step', r'''
def train_step(model, batch, optimizer):
    """One optimisation step on one batch; returns the loss before the update.

    model: a causal LM (``model(input_ids=...).logits`` has shape ``[batch, seq, vocab]``).
    batch: ``(inputs, targets)``, two long tensors ``[batch, seq]`` as a DataLoader over
        NextTokenDataset yields them.
    optimizer: a torch optimizer over the model's parameters.

    Puts the model in training mode, computes the mean cross-entropy of the logits against
    ``targets`` over all positions, back-propagates and steps the optimizer once. Gradients are
    cleared once per call (before the backward pass or after the step), so each call's step
    follows the gradient of its own batch only, never one accumulated over earlier calls.
    Returns the loss computed before the update (nats per token), as a Python float.
    """
    inputs, targets = batch
    device = next(model.parameters()).device
    inputs, targets = inputs.to(device), targets.to(device)
    model.train()
    optimizer.zero_grad(set_to_none=True)   # cleared at the start of the step
    logits = model(input_ids=inputs).logits
    # nll_loss on my own log-softmax, summed, then divided by the number of positions
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    loss = F.nll_loss(log_probs.reshape(-1, log_probs.shape[-1]), targets.reshape(-1),
                      reduction="sum") / targets.numel()
    loss.backward()
    optimizer.step()
    return loss.item()
'''),
    _correct('blind_right_evaluate_perplexity', 'evaluate_perplexity', r'''
def evaluate_perplexity(model, tokenizer, texts, batch_size, max_length=None, device=None):
    """Token-weighted loss and perplexity of ``model`` over ``texts``.

    model: a causal LM; tokenizer: its tokenizer (must have a pad token).
    texts: a list of strings. batch_size: texts per forward pass (int >= 1).
    max_length: if given, each text is truncated to its first ``max_length`` tokens.
    device: where the inputs go. None (the default): the device of the model's parameters.
        Given (e.g. ``"cpu"``): that device, even when the model's parameters report another
        one (a model whose weights are offloaded, say).

    Batched, inside inference mode (no gradients), the model left in eval mode. Padding
    and the first token of every text are not predictions and are excluded.
    Returns ``{"avg_loss": float (nats per predicted token), "perplexity": float
    (exp(avg_loss)), "n_tokens": int (predicted tokens that counted)}``.
    Raises ValueError when ``texts`` is empty or nothing can be predicted.
    """
    texts = list(texts)
    if not texts:
        raise ValueError("texts is empty: nothing to evaluate")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batch_size = int(batch_size)
    if device is None:
        device = next(model.parameters()).device
    if tokenizer.pad_token is None:
        raise ValueError("the tokenizer has no pad token")
    extra = {} if max_length is None else {"truncation": True, "max_length": int(max_length)}

    model.eval()
    total_nll = 0.0      # a Python float: double precision across batches
    total_count = 0
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            chunk = texts[start:start + batch_size]
            enc = tokenizer(chunk, padding=True, padding_side="right", return_tensors="pt", **extra)
            ids = enc["input_ids"].to(device)
            mask = enc["attention_mask"].to(device)
            if ids.shape[1] < 2 or int(mask.sum(dim=1).clamp(min=1).sub(1).sum()) == 0:
                continue     # no text in this batch has two tokens: nothing to predict
            logits = model(input_ids=ids, attention_mask=mask).logits
            # position t predicts token t+1; the target must be a real (non-pad) token.
            # With right padding, mask[:, 1:] is 1 exactly for real tokens after the first.
            scored = mask[:, 1:].bool()
            z = logits[:, :-1][scored].float()               # [n_scored, vocab]
            t = ids[:, 1:][scored]                           # [n_scored]
            nll = torch.logsumexp(z, dim=-1) - z.gather(-1, t[:, None]).squeeze(-1)
            total_nll += float(nll.double().sum())
            total_count += int(t.numel())
    if total_count == 0:
        raise ValueError("nothing to predict: every text has fewer than two tokens")
    avg_loss = total_nll / total_count
    return {"avg_loss": avg_loss, "perplexity": math.exp(avg_loss), "n_tokens": total_count}
'''),
    _correct('blind_right_sliding_window_perplexity', 'sliding_window_perplexity', r'''
def sliding_window_perplexity(model, tokenizer, text, max_length, stride):
    """Perplexity of one long text with a sliding window of ``max_length`` tokens moved by ``stride``.

    model, tokenizer: a causal LM and its tokenizer. text: one string.
    max_length: tokens per forward pass (int >= 2). stride: tokens the window moves (1..max_length).

    Each token is scored once, in the first window that reaches it, if that window holds at least
    one token before it (so with stride < max_length every token after the first is scored); the
    overlap with the previous window is context only. No gradients; the model left in eval mode.
    Returns ``{"avg_loss": float (nats per scored token), "perplexity": float,
    "n_tokens": int (tokens scored)}``.
    Raises ValueError for a stride outside 1..max_length or a text of fewer than two tokens.
    """
    max_length, stride = int(max_length), int(stride)
    if max_length < 2:
        raise ValueError(f"max_length must be >= 2, got {max_length}")
    if not 1 <= stride <= max_length:
        raise ValueError(f"stride must be between 1 and max_length={max_length}, got {stride}")
    ids = torch.as_tensor(tokenizer(text).input_ids, dtype=torch.long)
    n = ids.numel()
    if n < 2:
        raise ValueError(f"the text has {n} token(s): at least two are needed to predict anything")
    device = next(model.parameters()).device

    model.eval()
    total_nll, total_count = 0.0, 0
    prev_end = 0
    with torch.inference_mode():
        for begin in range(0, n, stride):
            end = min(begin + max_length, n)
            first_scored = max(prev_end, begin + 1)   # new tokens with at least one token of context
            if first_scored < end:
                window = ids[begin:end].to(device)[None]
                logits = model(input_ids=window).logits[0]
                # logits at window position p predict token begin + p + 1: slice directly,
                # instead of building a label tensor with -100.
                z = logits[first_scored - 1 - begin:end - 1 - begin].float()
                t = window[0, first_scored - begin:end - begin]
                nll = torch.logsumexp(z, dim=-1) - z.gather(-1, t[:, None]).squeeze(-1)
                total_nll += float(nll.double().sum())
                total_count += int(t.numel())
            prev_end = end
            if end == n:
                break
    avg_loss = total_nll / total_count
    return {"avg_loss": avg_loss, "perplexity": math.exp(avg_loss), "n_tokens": total_count}
'''),
]
