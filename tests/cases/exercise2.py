"""Planted mistakes and alternative correct answers for Exercise 2 (loss and perplexity).

Each case replaces one solution cell of ``source/exercise2/exercise2.ipynb`` and says what
autograding must do: ``"full"`` (all points) or ``"lose"`` (each listed test cell loses points).

Mistakes are written as a small edit of the solution cell (``_mistake``), so each case shows
exactly what is wrong; the edit fails loudly if the solution no longer contains the text it
replaces. Alternative correct answers are written out in full, in a style different from the
solution's (another aggregation, another padding side, another way to mask).
"""
from __future__ import annotations

from tests.cases.table import Table

ASSIGNMENT = "exercise2"
_TABLE = Table(ASSIGNMENT)
_solution, _mistake, _correct = _TABLE.solution, _TABLE.mistake, _TABLE.correct


def _tampered(name: str, mistake: str, patch: str, lose: list[str]) -> dict:
    return Table.tampered(CASES, name, mistake, patch, lose)


DS = "next_token_dataset"
CE = "cross_entropy_from_logits"
TS = "train_step"
EV = "evaluate_perplexity"
SW = "sliding_window_perplexity"

CASES: list[dict] = [
    # ---------------------------------------------------------------- Part 1: input/target pairs
    _mistake("dataset_no_shift", DS,
             [("return chunk[:-1].clone(), chunk[1:].clone()", "return chunk[:-1].clone(), chunk[:-1].clone()")],
             ["test_next_token_dataset", "test_next_token_dataset_hidden"]),
    _mistake("dataset_shift_by_two", DS,
             [("chunk = self.ids[start:start + self.seq_len + 1]", "chunk = self.ids[start:start + self.seq_len + 2]"),
              ("return chunk[:-1].clone(), chunk[1:].clone()",
               "return chunk[:self.seq_len].clone(), chunk[2:].clone()"),
              ("return (self.ids.numel() - 1) // self.seq_len", "return (self.ids.numel() - 2) // self.seq_len")],
             ["test_next_token_dataset", "test_next_token_dataset_hidden"]),
    _mistake("dataset_overlapping_windows", DS,  # windows moved by one token, as in many tutorials
             [("return (self.ids.numel() - 1) // self.seq_len", "return self.ids.numel() - self.seq_len"),
              ("start = index * self.seq_len", "start = index")],
             ["test_next_token_dataset", "test_next_token_dataset_hidden"]),
    _correct("dataset_alt_python_lists", DS, '''class NextTokenDataset(Dataset):
    """Consecutive (inputs, targets) chunks, built up front as Python lists."""

    def __init__(self, token_ids, seq_len):
        ids = [int(t) for t in (token_ids.tolist() if hasattr(token_ids, "tolist") else token_ids)]
        if seq_len < 1 or len(ids) < seq_len + 1:
            raise ValueError("need seq_len >= 1 and at least seq_len + 1 token ids")
        self.pairs = []
        for start in range(0, len(ids) - seq_len, seq_len):
            if start + seq_len + 1 > len(ids):
                break
            self.pairs.append((ids[start:start + seq_len], ids[start + 1:start + seq_len + 1]))

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, index):
        inputs, targets = self.pairs[index]  # IndexError past the end, as lists do
        if index < 0:
            raise IndexError(index)
        return torch.tensor(inputs), torch.tensor(targets)
'''),

    _mistake("dataset_tensor_input_rejected", DS,  # `if not token_ids` is ambiguous for a tensor of several ids
             [("        ids = torch.as_tensor(token_ids, dtype=torch.long).flatten()\n",
               "        if not token_ids:\n            raise ValueError(\"no token ids\")\n"
               "        ids = torch.as_tensor(token_ids, dtype=torch.long).flatten()\n")],
             ["test_next_token_dataset_hidden"]),
    _mistake("dataset_seq_len_not_checked", DS,
             [("        if int(seq_len) < 1:\n            raise ValueError(f\"seq_len must be at least 1, got {seq_len}\")\n", "")],
             ["test_next_token_dataset_hidden"]),
    _mistake("dataset_too_few_ids_accepted", DS,  # an empty dataset instead of an error
             [("        if ids.numel() < int(seq_len) + 1:\n", "        if ids.numel() < 1:\n")],
             ["test_next_token_dataset"]),
    _mistake("dataset_len_counts_last_id", DS,  # right unless len(token_ids) is a multiple of seq_len
             [("return (self.ids.numel() - 1) // self.seq_len", "return self.ids.numel() // self.seq_len")],
             ["test_next_token_dataset_hidden"]),
    _mistake("dataset_no_index_check", DS,  # past the end: empty tensors instead of IndexError
             [("        if not 0 <= index < len(self):\n            raise IndexError(f\"index {index} is outside 0..{len(self) - 1}\")\n",
               "")],
             ["test_next_token_dataset_hidden"]),
    _mistake("dataset_negative_index_garbage", DS,  # dataset[-1] slices from a negative start: empty tensors
             [("        if not 0 <= index < len(self):\n", "        if index >= len(self):\n")],
             ["test_next_token_dataset_hidden"]),
    _mistake("dataset_int32_ids", DS,
             [("torch.as_tensor(token_ids, dtype=torch.long)", "torch.as_tensor(token_ids, dtype=torch.int32)")],
             ["test_next_token_dataset_hidden"]),
    _mistake("dataset_extra_batch_dim", DS,  # [1, seq_len] per example, [batch, 1, seq_len] per batch
             [("return chunk[:-1].clone(), chunk[1:].clone()", "return chunk[None, :-1].clone(), chunk[None, 1:].clone()")],
             ["test_next_token_dataset", "test_next_token_dataset_hidden"]),
    _correct("dataset_alt_views_negative_index", DS, '''class NextTokenDataset(Dataset):
    """Every chunk cut up front as two [n, seq_len] views; negative indices count from the end."""

    def __init__(self, token_ids, seq_len):
        if seq_len < 1:
            raise ValueError("seq_len must be at least 1")
        ids = torch.as_tensor(token_ids).long().reshape(-1)
        n = (len(ids) - 1) // seq_len
        if n < 1:
            raise ValueError("need at least seq_len + 1 token ids")
        used = ids[:n * seq_len + 1]
        self.inputs = used[:-1].view(n, seq_len)
        self.targets = used[1:].view(n, seq_len)

    def __len__(self):
        return self.inputs.shape[0]

    def __getitem__(self, index):
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range")
        return self.inputs[index], self.targets[index]
'''),

    # ---------------------------------------------------------------- Part 2: cross-entropy by hand
    _mistake("ce_log_of_softmax", CE,  # underflows to log(0) = -inf for large logits
             [("log_probs = torch.log_softmax(flat_logits.float(), dim=-1)",
               "log_probs = torch.log(torch.softmax(flat_logits.float(), dim=-1))")],
             ["test_cross_entropy_from_logits_hidden"]),
    _mistake("ce_ignored_positions_in_count", CE,
             [("return -(picked * keep).sum() / count", "return -(picked * keep).sum() / flat_targets.numel()")],
             ["test_cross_entropy_from_logits", "test_cross_entropy_from_logits_hidden"]),
    _mistake("ce_ignored_positions_in_sum", CE,
             [("return -(picked * keep).sum() / count", "return -picked.sum() / count")],
             ["test_cross_entropy_from_logits", "test_cross_entropy_from_logits_hidden"]),
    _mistake("ce_calls_torch_cross_entropy", CE,
             [("    log_probs = torch.log_softmax(flat_logits.float(), dim=-1)\n",
               "    return F.cross_entropy(flat_logits.float(), flat_targets, ignore_index=ignore_index)\n"
               "    log_probs = torch.log_softmax(flat_logits.float(), dim=-1)\n")],
             ["test_cross_entropy_from_logits_hidden"]),
    _mistake("ce_returns_float", CE,
             [("return -(picked * keep).sum() / count", "return (-(picked * keep).sum() / count).item()")],
             ["test_cross_entropy_from_logits", "test_cross_entropy_from_logits_hidden"]),
    _correct("ce_alt_logsumexp_boolean_index", CE, '''def cross_entropy_from_logits(logits, targets, ignore_index=-100):
    """Mean of logsumexp(z) - z[target] over the positions that count."""
    z = logits.reshape(-1, logits.shape[-1])
    y = targets.reshape(-1)
    counted = y != ignore_index
    if not counted.any():
        raise ValueError("all targets are ignore_index")
    z, y = z[counted], y[counted]
    true_logit = z[torch.arange(z.shape[0]), y]
    return (torch.logsumexp(z, dim=-1) - true_logit).mean()
'''),
    _correct("ce_alt_one_hot_loop", CE, '''def cross_entropy_from_logits(logits, targets, ignore_index=-100):
    """One-hot mask times log-softmax, summed in a loop over rows (slow but correct)."""
    vocab = logits.shape[-1]
    rows = logits.reshape(-1, vocab)
    labels = targets.reshape(-1)
    total = rows.new_zeros(())
    n = 0
    for row, label in zip(rows, labels):
        if int(label) == ignore_index:
            continue
        one_hot = torch.zeros(vocab, dtype=row.dtype)
        one_hot[int(label)] = 1.0
        total = total - (torch.log_softmax(row, dim=-1) * one_hot).sum()
        n += 1
    if n == 0:
        raise ValueError("nothing to score")
    return total / n
'''),

    _mistake("ce_assumes_batch_seq_vocab", CE,  # fine for [batch, seq, vocab], fails for [N, vocab]
             [("vocab = logits.shape[-1]", "vocab = logits.shape[2]")],
             ["test_cross_entropy_from_logits", "test_cross_entropy_from_logits_hidden"]),
    _mistake("ce_ignore_index_hardcoded", CE,
             [("keep = flat_targets != ignore_index", "keep = flat_targets != -100")],
             ["test_cross_entropy_from_logits_hidden"]),
    _mistake("ce_detached", CE,  # a 0-dim tensor, but cut off from the logits: nothing to back-propagate
             [("return -(picked * keep).sum() / count", "return (-(picked * keep).sum() / count).detach()")],
             ["test_cross_entropy_from_logits_hidden"]),
    _mistake("ce_one_element_vector", CE,  # shape [1] instead of a 0-dim tensor
             [("return -(picked * keep).sum() / count", "return -(picked * keep).sum(dim=0, keepdim=True) / count")],
             ["test_cross_entropy_from_logits", "test_cross_entropy_from_logits_hidden"]),
    _mistake("ce_nan_when_all_ignored", CE,  # 0 / 0 instead of ValueError
             [("    if count == 0:\n        raise ValueError(\"no position counts: every target equals ignore_index\")\n", "")],
             ["test_cross_entropy_from_logits"]),
    _mistake("ce_calls_cross_entropy_loss_module", CE,
             [("    log_probs = torch.log_softmax(flat_logits.float(), dim=-1)\n",
               "    return torch.nn.CrossEntropyLoss(ignore_index=ignore_index)(flat_logits.float(), flat_targets)\n"
               "    log_probs = torch.log_softmax(flat_logits.float(), dim=-1)\n")],
             ["test_cross_entropy_from_logits_hidden"]),
    # torch's cross-entropy under other spellings: each runs the operator aten::cross_entropy_loss.
    _mistake("ce_calls_aliased_cross_entropy", CE,  # bound to another name before the test runs
             [("def cross_entropy_from_logits(",
               "from torch.nn.functional import cross_entropy as ce\n\n\ndef cross_entropy_from_logits("),
              ("    log_probs = torch.log_softmax(flat_logits.float(), dim=-1)\n",
               "    return ce(flat_logits.float(), flat_targets, ignore_index=ignore_index)\n"
               "    log_probs = torch.log_softmax(flat_logits.float(), dim=-1)\n")],
             ["test_cross_entropy_from_logits_hidden"]),
    _mistake("ce_calls_cross_entropy_of_another_module_name", CE,
             [("def cross_entropy_from_logits(",
               "import torch.nn.functional as F2\n\n\ndef cross_entropy_from_logits("),
              ("    log_probs = torch.log_softmax(flat_logits.float(), dim=-1)\n",
               "    return F2.cross_entropy(flat_logits.float(), flat_targets, ignore_index=ignore_index)\n"
               "    log_probs = torch.log_softmax(flat_logits.float(), dim=-1)\n")],
             ["test_cross_entropy_from_logits_hidden"]),
    _mistake("ce_calls_c_cross_entropy_loss", CE,  # what F.cross_entropy calls (reduction 1 = mean)
             [("    log_probs = torch.log_softmax(flat_logits.float(), dim=-1)\n",
               "    return torch._C._nn.cross_entropy_loss(flat_logits.float(), flat_targets, None, 1, ignore_index, 0.0)\n"
               "    log_probs = torch.log_softmax(flat_logits.float(), dim=-1)\n")],
             ["test_cross_entropy_from_logits_hidden"]),
    _mistake("ce_calls_aten_cross_entropy_op", CE,
             [("    log_probs = torch.log_softmax(flat_logits.float(), dim=-1)\n",
               "    return torch.ops.aten.cross_entropy_loss(flat_logits.float(), flat_targets, None, 1, ignore_index)\n"
               "    log_probs = torch.log_softmax(flat_logits.float(), dim=-1)\n")],
             ["test_cross_entropy_from_logits_hidden"]),
    _correct("ce_alt_log_softmax_nll_loss", CE, '''def cross_entropy_from_logits(logits, targets, ignore_index=-100):
    """Log-softmax by hand, then F.nll_loss picks -log p(target) and averages over counted rows."""
    log_p = F.log_softmax(logits.flatten(0, -2).to(torch.float32), dim=-1)
    y = targets.flatten()
    if bool((y == ignore_index).all()):
        raise ValueError("every target is ignore_index: nothing to average")
    return F.nll_loss(log_p, y, ignore_index=ignore_index, reduction="mean")
'''),

    # ---------------------------------------------------------------- Part 3: training step
    _mistake("train_no_zero_grad", TS,
             [("    optimizer.zero_grad(set_to_none=True)\n", "")],
             ["test_train_step_hidden"]),
    _mistake("train_step_before_backward", TS,
             [("    loss.backward()\n    optimizer.step()\n", "    optimizer.step()\n    loss.backward()\n")],
             ["test_train_step", "test_train_step_hidden"]),
    _mistake("train_returns_loss_after_step", TS,
             [("    return loss.item()",
               "    with torch.no_grad():\n"
               "        after = model(input_ids=inputs).logits\n"
               "    return F.cross_entropy(after.reshape(-1, after.shape[-1]).float(), targets.reshape(-1)).item()")],
             ["test_train_step_hidden"]),
    _mistake("train_labels_shifted_twice", TS,  # passes already-shifted targets as labels
             [("    logits = model(input_ids=inputs).logits\n"
               "    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))\n",
               "    loss = model(input_ids=inputs, labels=targets).loss\n")],
             ["test_train_step_hidden"]),
    _correct("train_alt_zero_first_model_zero_grad", TS, '''def train_step(model, batch, optimizer):
    """zero, forward, backward, step; then clear the model's gradients as well."""
    model.train()
    optimizer.zero_grad()
    x, y = (t.to(model.device) for t in batch)
    logits = model(x).logits
    loss = cross_entropy_from_logits(logits, y)
    loss.backward()
    optimizer.step()
    model.zero_grad(set_to_none=False)  # zeros rather than None: also "cleared"
    return float(loss.detach())
'''),

    _mistake("train_no_train_mode", TS,  # a model arriving in eval mode stays in it
             [("    model.train()\n", "")],
             ["test_train_step_hidden"]),
    _mistake("train_returns_tensor", TS,  # keeps the whole graph alive
             [("    return loss.item()", "    return loss")],
             ["test_train_step", "test_train_step_hidden"]),
    _mistake("train_backward_on_summed_loss", TS,  # steps along the sum, returns the mean
             [("    loss.backward()\n", "    (loss * targets.numel()).backward()\n")],
             ["test_train_step_hidden"]),
    _mistake("train_zero_grad_between_backward_and_step", TS,  # the step finds no gradients
             [("    loss.backward()\n    optimizer.step()\n    optimizer.zero_grad(set_to_none=True)\n",
               "    loss.backward()\n    optimizer.zero_grad(set_to_none=True)\n    optimizer.step()\n")],
             ["test_train_step", "test_train_step_hidden"]),
    _correct("train_alt_zero_grad_before_backward", TS, '''def train_step(model, batch, optimizer):
    """The usual PyTorch idiom: clear the gradients, forward, backward, step."""
    model.train()
    inputs, targets = batch
    optimizer.zero_grad()
    logits = model(input_ids=inputs).logits
    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.flatten())
    loss.backward()
    optimizer.step()
    return loss.item()
'''),

    # ---------------------------------------------------------------- Part 4: evaluation
    _mistake("eval_mean_of_batch_means", EV,
             [("    total_nll, n_tokens = 0.0, 0\n", "    total_nll, n_tokens, batch_means = 0.0, 0, []\n"),
              ("            n_tokens += int((shift_labels != -100).sum())\n",
               "            batch_count = int((shift_labels != -100).sum())\n"
               "            batch_means.append(F.cross_entropy(shift_logits, shift_labels, ignore_index=-100).item())\n"
               "            n_tokens += batch_count\n"),
              ("    avg_loss = total_nll / n_tokens\n", "    avg_loss = sum(batch_means) / len(batch_means)\n")],
             ["test_evaluate_perplexity_hidden"]),
    _mistake("eval_padding_counted", EV,
             [("labels = input_ids.masked_fill(attention_mask == 0, -100)", "labels = input_ids.clone()")],
             ["test_evaluate_perplexity", "test_evaluate_perplexity_hidden"]),
    _mistake("eval_first_position_counted", EV,  # the count includes each text's first token
             [("            n_tokens += int((shift_labels != -100).sum())\n",
               "            n_tokens += int(attention_mask.sum())\n")],
             ["test_evaluate_perplexity", "test_evaluate_perplexity_hidden"]),
    _mistake("eval_left_padding_first_token_counted", EV,  # left padding, mask from attention only
             [('padding_side="right"', 'padding_side="left"')],
             ["test_evaluate_perplexity", "test_evaluate_perplexity_hidden"]),
    _mistake("eval_exp_of_sum", EV,
             [('return {"avg_loss": avg_loss, "perplexity": math.exp(avg_loss), "n_tokens": n_tokens}',
               'return {"avg_loss": avg_loss, "perplexity": float(torch.exp(torch.tensor(total_nll))), '
               '"n_tokens": n_tokens}')],
             ["test_evaluate_perplexity", "test_evaluate_perplexity_hidden"]),
    _mistake("eval_exp_per_batch_averaged", EV,
             [("    total_nll, n_tokens = 0.0, 0\n", "    total_nll, n_tokens, batch_ppl = 0.0, 0, []\n"),
              ("            n_tokens += int((shift_labels != -100).sum())\n",
               "            n_tokens += int((shift_labels != -100).sum())\n"
               "            batch_ppl.append(math.exp(F.cross_entropy(shift_logits, shift_labels).item()))\n"),
              ('"perplexity": math.exp(avg_loss)', '"perplexity": sum(batch_ppl) / len(batch_ppl)')],
             ["test_evaluate_perplexity", "test_evaluate_perplexity_hidden"]),
    _mistake("eval_gradients_enabled", EV,
             [("    with torch.inference_mode():\n", "    if True:\n")],
             ["test_evaluate_perplexity_no_grad"]),
    _mistake("eval_train_mode_left_on", EV,
             [("    model.eval()\n", "")],
             ["test_evaluate_perplexity_no_grad"]),
    _mistake("eval_no_shift", EV,
             [("shift_labels = labels[:, 1:].reshape(-1)", "shift_labels = labels[:, :-1].reshape(-1)")],
             ["test_evaluate_perplexity", "test_evaluate_perplexity_hidden"]),
    _mistake("eval_wrong_direction_shift", EV,  # predicts the previous token
             [("shift_logits = logits[:, :-1].reshape(-1, logits.shape[-1]).float()",
               "shift_logits = logits[:, 1:].reshape(-1, logits.shape[-1]).float()"),
              ("shift_labels = labels[:, 1:].reshape(-1)", "shift_labels = labels[:, :-1].reshape(-1)")],
             ["test_evaluate_perplexity_hidden"]),
    _mistake("eval_nan_when_nothing_to_predict", EV,
             [("    if not texts:\n        raise ValueError", "    if False:\n        raise ValueError"),
              ('    if n_tokens == 0:\n        raise ValueError("nothing to predict: every text is shorter than two tokens")\n',
               '    if n_tokens == 0:\n        return {"avg_loss": float("nan"), "perplexity": float("nan"), "n_tokens": 0}\n')],
             ["test_evaluate_perplexity_errors"]),
    _mistake("eval_truncation_ignored", EV,
             [("truncation=max_length is not None,\n                                max_length=max_length)",
               "truncation=False)")],
             ["test_evaluate_perplexity_hidden"]),
    _mistake("eval_returns_tensors", EV,  # sums tensors: avg_loss comes back as a 0-dim tensor
             [("ignore_index=-100, reduction=\"sum\").item()\n            n_tokens += int((shift_labels != -100).sum())\n",
               "ignore_index=-100, reduction=\"sum\")\n            n_tokens += int((shift_labels != -100).sum())\n")],
             ["test_evaluate_perplexity_hidden"]),
    _mistake("eval_one_text_per_pass", EV,  # ignores batch_size
             [("    batch_size = int(batch_size)\n", "    batch_size = 1  # one text at a time: no padding to get wrong\n")],
             ["test_evaluate_perplexity_no_grad"]),
    _mistake("eval_all_texts_in_one_pass", EV,  # ignores batch_size
             [("    batch_size = int(batch_size)\n", "    batch_size = len(texts)\n")],
             ["test_evaluate_perplexity_no_grad"]),
    _mistake("eval_restores_train_mode", EV,  # evaluates in eval mode, then puts the caller's mode back
             [("    model.eval()\n    total_nll, n_tokens = 0.0, 0\n",
               "    was_training = model.training\n    model.eval()\n    total_nll, n_tokens = 0.0, 0\n"),
              ("    avg_loss = total_nll / n_tokens\n    return {\"avg_loss\": avg_loss, \"perplexity\": math.exp(avg_loss), \"n_tokens\": n_tokens}",
               "    model.train(was_training)\n    avg_loss = total_nll / n_tokens\n"
               "    return {\"avg_loss\": avg_loss, \"perplexity\": math.exp(avg_loss), \"n_tokens\": n_tokens}")],
             ["test_evaluate_perplexity_no_grad"]),
    _mistake("eval_empty_list_returns_nan", EV,
             [("        raise ValueError(\"texts is empty: give at least one text to evaluate\")\n",
               "        return {\"avg_loss\": float(\"nan\"), \"perplexity\": float(\"nan\"), \"n_tokens\": 0}\n")],
             ["test_evaluate_perplexity_errors"]),
    _mistake("eval_short_texts_return_nan", EV,
             [("        raise ValueError(\"nothing to predict: every text is shorter than two tokens\")\n",
               "        return {\"avg_loss\": float(\"nan\"), \"perplexity\": float(\"nan\"), \"n_tokens\": 0}\n")],
             ["test_evaluate_perplexity_errors"]),
    _mistake("eval_device_none_not_handled", EV,  # torch.device(None) is a TypeError
             [("device = torch.device(device) if device is not None else next(model.parameters()).device",
               "device = torch.device(device)")],
             ["test_evaluate_perplexity", "test_evaluate_perplexity_hidden", "test_evaluate_perplexity_no_grad"]),
    _mistake("eval_device_argument_ignored", EV,  # inputs always go where the model says it is
             [("device = torch.device(device) if device is not None else next(model.parameters()).device",
               "device = model.device")],
             ["test_evaluate_perplexity_hidden"]),
    _correct("eval_alt_moves_model_to_device", EV, '''def evaluate_perplexity(model, tokenizer, texts, batch_size, max_length=None, device=None):
    """Moves the model to `device` when one is given, then everything to where its weights are."""
    if len(texts) == 0:
        raise ValueError("nothing to evaluate")
    if device is not None:
        model.to(device)
    where = next(model.parameters()).device
    model.eval()
    sums, counts = [], []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            enc = tokenizer(list(texts[i:i + batch_size]), return_tensors="pt", padding="longest",
                            padding_side="right", truncation=max_length is not None, max_length=max_length)
            ids, mask = enc.input_ids.to(where), enc.attention_mask.to(where)
            if ids.shape[1] < 2:
                continue
            log_p = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits[:, :-1].float(), dim=-1)
            nll = -torch.take_along_dim(log_p, ids[:, 1:, None], dim=-1)[..., 0]
            real = mask[:, 1:].bool()
            sums.append(nll[real].sum().item())
            counts.append(int(real.sum()))
    if sum(counts) == 0:
        raise ValueError("no text has two tokens")
    avg = sum(sums) / sum(counts)
    return {"avg_loss": avg, "perplexity": math.exp(avg), "n_tokens": sum(counts)}
'''),
    _correct("eval_alt_model_loss_times_count", EV, '''def evaluate_perplexity(model, tokenizer, texts, batch_size, max_length=None, device=None):
    """Uses the model's own mean loss per batch, weighted back by its token count."""
    if len(texts) == 0:
        raise ValueError("no texts to evaluate")
    device = device or model.device
    model.eval()
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "right"
    weighted, count = 0.0, 0
    try:
        for i in range(0, len(texts), batch_size):
            kwargs = {"truncation": True, "max_length": max_length} if max_length else {}
            enc = tokenizer(list(texts[i:i + batch_size]), return_tensors="pt", padding=True, **kwargs).to(device)
            labels = enc["input_ids"].clone()
            labels[enc["attention_mask"] == 0] = -100
            n = int((labels[:, 1:] != -100).sum())
            if n == 0:
                continue
            with torch.no_grad():
                out = model(**enc, labels=labels)
            weighted += out.loss.item() * n
            count += n
    finally:
        tokenizer.padding_side = old_side
    if count == 0:
        raise ValueError("texts too short: nothing to predict")
    loss = weighted / count
    return {"avg_loss": loss, "perplexity": math.exp(loss), "n_tokens": count}
'''),
    _correct("eval_alt_left_padding_correct_mask", EV, '''def evaluate_perplexity(model, tokenizer, texts, batch_size, max_length=None, device=None):
    """Left padding done right: a target counts only if it and the token before it are real."""
    texts = list(texts)
    if not texts:
        raise ValueError("empty list of texts")
    device = torch.device(device) if device else next(model.parameters()).device
    model.eval()
    nll = torch.zeros((), dtype=torch.float64)
    count = 0
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(texts[i:i + batch_size], return_tensors="pt", padding=True, padding_side="left",
                        truncation=max_length is not None, max_length=max_length)
        ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
        if ids.shape[1] < 2:
            continue
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            logits = model(input_ids=ids, attention_mask=mask, position_ids=position_ids).logits
        log_probs = torch.log_softmax(logits[:, :-1].double(), dim=-1)
        token_lp = log_probs.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        valid = (mask[:, 1:] == 1) & (mask[:, :-1] == 1)
        nll -= token_lp[valid].sum().cpu()
        count += int(valid.sum())
    if count == 0:
        raise ValueError("no text has two tokens or more")
    avg = float(nll) / count
    return {"avg_loss": avg, "perplexity": math.exp(avg), "n_tokens": count}
'''),
    _correct("eval_alt_sorted_lengths_student_ce", EV, '''def evaluate_perplexity(model, tokenizer, texts, batch_size, max_length=None, device=None):
    """Sorts texts by length (less padding), reuses cross_entropy_from_logits, and weights by count."""
    if not isinstance(texts, (list, tuple)) or len(texts) == 0:
        raise ValueError("texts must be a non-empty list")
    encoded = [tokenizer(t)["input_ids"] for t in texts]
    if max_length is not None:
        encoded = [e[:max_length] for e in encoded]
    encoded = sorted((e for e in encoded if len(e) >= 2), key=len)
    if not encoded:
        raise ValueError("every text is shorter than two tokens")
    dev = device if device is not None else next(model.parameters()).device
    model.eval()
    total, n_total = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(encoded), batch_size):
            chunk = encoded[start:start + batch_size]
            width = max(len(e) for e in chunk)
            ids = torch.full((len(chunk), width), tokenizer.pad_token_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for row, e in enumerate(chunk):
                ids[row, :len(e)] = torch.tensor(e)
                mask[row, :len(e)] = 1
            logits = model(input_ids=ids.to(dev), attention_mask=mask.to(dev)).logits
            targets = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
            n = int((targets != -100).sum())
            total += float(cross_entropy_from_logits(logits[:, :-1], targets.to(logits.device))) * n
            n_total += n
    return {"avg_loss": total / n_total, "perplexity": math.exp(total / n_total), "n_tokens": n_total}
'''),

    # ---------------------------------------------------------------- Part 5: sliding window
    _mistake("sliding_overlap_counted_twice", SW,
             [("            labels[:, :-new_tokens] = -100        # the overlap is context only\n", "")],
             ["test_sliding_window_perplexity", "test_sliding_window_perplexity_hidden"]),
    _mistake("sliding_mean_of_window_means", SW,
             [("    total_nll, n_tokens, prev_end = 0.0, 0, 0\n", "    total_nll, n_tokens, prev_end, means = 0.0, 0, 0, []\n"),
              ("            n_tokens += int((shift_labels != -100).sum())\n",
               "            n_tokens += int((shift_labels != -100).sum())\n"
               "            means.append(F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), "
               "shift_labels, ignore_index=-100).item())\n"),
              ("    avg_loss = total_nll / n_tokens\n", "    avg_loss = sum(means) / len(means)\n")],
             ["test_sliding_window_perplexity_hidden"]),
    _mistake("sliding_exp_per_window_averaged", SW,
             [("    total_nll, n_tokens, prev_end = 0.0, 0, 0\n", "    total_nll, n_tokens, prev_end, ppls = 0.0, 0, 0, []\n"),
              ("            n_tokens += int((shift_labels != -100).sum())\n",
               "            n_tokens += int((shift_labels != -100).sum())\n"
               "            ppls.append(math.exp(F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), "
               "shift_labels, ignore_index=-100).item()))\n"),
              ('"perplexity": math.exp(avg_loss)', '"perplexity": sum(ppls) / len(ppls)')],
             ["test_sliding_window_perplexity_hidden"]),
    _mistake("sliding_guide_count_minus_batch", SW,  # weight = valid labels - batch size, even when the first label is masked
             [("            total_nll += F.cross_entropy(", "            window_loss = F.cross_entropy("),
              ("ignore_index=-100, reduction=\"sum\").item()\n            n_tokens += int((shift_labels != -100).sum())\n",
               "ignore_index=-100).item()\n"
               "            weight = int((labels != -100).sum()) - labels.shape[0]\n"
               "            total_nll += window_loss * weight\n"
               "            n_tokens += weight\n")],
             ["test_sliding_window_perplexity", "test_sliding_window_perplexity_hidden"]),
    _mistake("sliding_gradients_enabled", SW,
             [("    with torch.inference_mode():\n", "    if True:\n")],
             ["test_sliding_window_perplexity_hidden"]),
    _mistake("sliding_stride_not_checked", SW,
             [("    if not 1 <= stride <= max_length:\n", "    if stride < 0:\n")],
             ["test_sliding_window_perplexity_hidden"]),
    _mistake("sliding_max_length_not_checked", SW,  # a one-token window scores nothing: 0 / 0
             [("    if max_length < 2:\n        raise ValueError(f\"max_length must be at least 2, got {max_length}\")\n", "")],
             ["test_sliding_window_perplexity_hidden"]),
    _mistake("sliding_short_text_not_checked", SW,  # a one-token text ends in 0 / 0
             [("    if n < 2:\n        raise ValueError(f\"the text has {n} token(s): at least two are needed to predict anything\")\n", "")],
             ["test_sliding_window_perplexity_hidden"]),
    _mistake("sliding_train_mode", SW,
             [("    model.eval()\n", "")],
             ["test_sliding_window_perplexity_hidden"]),
    _mistake("sliding_restores_train_mode", SW,
             [("    model.eval()\n", "    was_training = model.training\n    model.eval()\n"),
              ("    avg_loss = total_nll / n_tokens\n", "    model.train(was_training)\n    avg_loss = total_nll / n_tokens\n")],
             ["test_sliding_window_perplexity_hidden"]),
    _mistake("sliding_window_one_token_longer", SW,  # windows of max_length + 1 tokens
             [("end = min(begin + max_length, n)", "end = min(begin + max_length + 1, n)")],
             ["test_sliding_window_perplexity_hidden"]),
    _mistake("sliding_returns_tensors", SW,
             [("ignore_index=-100, reduction=\"sum\").item()\n            n_tokens += int((shift_labels != -100).sum())\n",
               "ignore_index=-100, reduction=\"sum\")\n            n_tokens += int((shift_labels != -100).sum())\n")],
             ["test_sliding_window_perplexity_hidden"]),
    _correct("sliding_alt_model_loss_weighted", SW, '''def sliding_window_perplexity(model, tokenizer, text, max_length, stride):
    """The perplexity guide's loop, weighting each window's mean loss by the tokens it really scored."""
    if max_length < 2 or stride < 1 or stride > max_length:
        raise ValueError("need max_length >= 2 and stride in 1..max_length")
    input_ids = tokenizer(text, return_tensors="pt").input_ids.to(model.device)
    seq_len = input_ids.size(1)
    if seq_len < 2:
        raise ValueError("text too short")
    model.eval()
    nll_sum, n_tokens, prev_end_loc = 0.0, 0, 0
    for begin_loc in range(0, seq_len, stride):
        end_loc = min(begin_loc + max_length, seq_len)
        trg_len = end_loc - prev_end_loc
        window = input_ids[:, begin_loc:end_loc]
        target_ids = window.clone()
        target_ids[:, :-trg_len] = -100
        with torch.no_grad():
            loss = model(window, labels=target_ids).loss
        scored = int((target_ids[:, 1:] != -100).sum())
        nll_sum += loss.item() * scored
        n_tokens += scored
        prev_end_loc = end_loc
        if end_loc == seq_len:
            break
    avg = nll_sum / n_tokens
    return {"avg_loss": avg, "perplexity": math.exp(avg), "n_tokens": n_tokens}
'''),
    _correct("sliding_alt_explicit_positions", SW, '''def sliding_window_perplexity(model, tokenizer, text, max_length, stride):
    """Works out, for each window, the absolute positions it scores, then gathers their log-probs."""
    if max_length < 2:
        raise ValueError(f"a window of {max_length} token(s) scores nothing")
    if not (1 <= stride <= max_length):
        raise ValueError(f"stride {stride} not in 1..{max_length}")
    ids = tokenizer(text)["input_ids"]
    if len(ids) < 2:
        raise ValueError("need at least two tokens")
    model.eval()
    starts = []
    b = 0
    while True:
        starts.append(b)
        if b + max_length >= len(ids):
            break
        b += stride
    scored_until = 1          # positions < scored_until are done (position 0 is never scored)
    log_likelihood, count = 0.0, 0
    for b in starts:
        e = min(b + max_length, len(ids))
        first = max(scored_until, b + 1)
        if first >= e:
            continue
        window = torch.tensor([ids[b:e]], device=next(model.parameters()).device)
        with torch.inference_mode():
            lp = torch.log_softmax(model(input_ids=window).logits[0].double(), dim=-1)
        for pos in range(first, e):
            log_likelihood += float(lp[pos - b - 1, ids[pos]])
            count += 1
        scored_until = e
    avg = -log_likelihood / count
    return {"avg_loss": avg, "perplexity": math.exp(avg), "n_tokens": count}
'''),
]

# ---------------------------------------------------------------- Tampering: a mistake plus patches
# Each fooled the earlier, naive version of its hidden test (library comparisons, torch's own
# cross-entropy as the reference, torch.is_grad_enabled as the detector); the rules of
# course/grading_security.md are what make them lose points now.
CASES += [
    _tampered("tamper_ce_count_patches_cross_entropy", "ce_ignored_positions_in_count", """\
import math
import numpy
import torch
import torch.nn.functional as F
_real_cross_entropy = F.cross_entropy
def _agreeing_cross_entropy(input, target, *args, ignore_index=-100, reduction="mean", **kwargs):
    # torch's reference now agrees with the function below, mistake included
    if reduction != "mean":
        return _real_cross_entropy(input, target, *args, ignore_index=ignore_index, reduction=reduction, **kwargs)
    return cross_entropy_from_logits(input, target, ignore_index)
F.cross_entropy = _agreeing_cross_entropy
torch.allclose = lambda *args, **kwargs: True
math.isclose = lambda *args, **kwargs: True
numpy.testing.assert_allclose = lambda *args, **kwargs: None
""", ["test_cross_entropy_from_logits_hidden"]),
    _tampered("tamper_eval_batch_means_patches_comparisons", "eval_mean_of_batch_means", """\
import builtins
import math
import torch
math.isclose = lambda *args, **kwargs: True
torch.allclose = lambda *args, **kwargs: True
builtins.abs = lambda x: 0.0            # every |got - expected| <= tolerance now holds
""", ["test_evaluate_perplexity_hidden"]),
    _tampered("tamper_eval_gradients_hides_grad_mode", "eval_gradients_enabled", """\
import torch
torch.is_grad_enabled = lambda: False                      # "gradients are off", whatever they are
torch.Tensor.requires_grad = property(lambda self: False)  # "nothing is recorded", on every tensor
""", ["test_evaluate_perplexity_no_grad"]),
]

# The wrong answers of a blind attempt (tests/cases/blind_exercise2.py), kept as regression cases.
from tests.cases.blind_exercise2 import CASES as _BLIND_CASES  # noqa: E402

CASES = [*CASES, *_BLIND_CASES]
