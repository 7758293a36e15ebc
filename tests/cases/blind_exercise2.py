"""Wrong answers written by a blind attempt at exercise2 (someone given only what a student receives,
December 2026): each passed every visible test; each must lose points in the hidden tests listed."""
from __future__ import annotations

from tests.cases.table import Table

_wrong = Table("exercise2").wrong

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
]
