# %% [markdown]
# ## Loading the model
#
# Tokenizer and model always come from the **same id**: a tokenizer from another model
# maps text to different ids, and the loss would be measured on nonsense without any error.
# The candidates are tried in order (the hub id first for those online, then the local copy);
# when every one fails, the error says which ids were tried and why, which is what you need
# to fix it. Quality is measured in float32 here, so that the numbers are a reference that
# faster, lower-precision variants can later be compared with.

# %% [readonly id=load_model]
def load_model_and_tokenizer(candidates, device):
    """Load tokenizer and model from the first candidate id that works.

    candidates: model ids or local folders, tried in order. device: "cpu" or "cuda".
    Returns (tokenizer, model, model_id_used, dtype_label), the model in eval mode on
    ``device``. Prints ``Loaded: <id> | device=<device> | dtype=<label>``.
    """
    failures = []
    for model_id in candidates:
        try:
            tokenizer = AutoTokenizer.from_pretrained(model_id)
            model = AutoModelForCausalLM.from_pretrained(model_id, dtype=torch.float32)
        except Exception as error:  # offline hub id, missing folder, broken files...
            reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
            failures.append(f"{model_id}: {type(error).__name__}: {reason}")
            continue
        model.to(device).eval()
        dtype_label = str(model.dtype).replace("torch.", "")
        print(f"Loaded: {model_id} | device={device} | dtype={dtype_label}")
        return tokenizer, model, str(model_id), dtype_label
    raise RuntimeError(
        "no model candidate could be loaded; tried:\n  " + "\n  ".join(failures or ["(no candidates given)"])
        + "\nThe local folders are built by the course set-up (`make setup` in the course repository; on the "
        "course's JupyterHub they are already there: tell your instructor)."
    )


tokenizer, model, MODEL_ID, DTYPE_LABEL = load_model_and_tokenizer(helpers.model_candidates(), DEVICE)
MODEL_LABEL = helpers.model_label(MODEL_ID)  # the folder name or hub id, for tables and titles

