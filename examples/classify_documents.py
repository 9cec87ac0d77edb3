"""Long-document classification from raw text: IMDB reviews, positive or negative.

The whole model is one scikit-learn Pipeline: ``TextEncoder`` turns each review into its first
``max_len`` token ids (its vocabulary is fitted on the training documents only, so inside a
cross-validation each fold builds its own and never sees the held-out fold's words), and
``QLLSTMClassifier`` embeds the ids and reads them with QL-LSTM. ``GridSearchCV`` picks the skip
weight ``alpha`` by 3-fold cross-validation on the training reviews, then the best pipeline is
scored on held-out test reviews. ``bucket_by_length=True`` trains on batches of reviews of similar
length, so each batch runs about as many steps as its reviews have tokens rather than as many as
its longest review (3.5x fewer on IMDB at 1,000 tokens; ``benchmarks/results/bucketing.md``).

A subset keeps this a few minutes on 2 CPU cores: 3,000 training and 3,000 test reviews at 1,000
tokens, 3 epochs. The full benchmark (25k/25k reviews at 1,000 tokens, several cells and seeds) is
``benchmarks/paper_table.py``.

Run:  python examples/classify_documents.py
Data: $QLTS_DATA/imdb/, or ../shared/data beside the repository.
"""
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from qlts import QLLSTMClassifier
from qlts.datasets import load_imdb
from qlts.preprocessing import TextEncoder

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if "QLTS_DATA" not in os.environ and SHARED.is_dir():
    os.environ["QLTS_DATA"] = str(SHARED)  # the data sets checked out beside the repository

N_TRAIN, N_TEST, MAX_LEN, MAX_SIZE, MAX_EPOCHS = 3000, 3000, 1000, 10000, 3


def main():
    start = time.perf_counter()
    imdb = load_imdb()  # the reviews come sorted by label: draw a random subset of each split
    train = imdb["train"].sample(N_TRAIN, random_state=0)
    test = imdb["test"].sample(N_TEST, random_state=1)
    print(f"{len(train)} training and {len(test)} test reviews; positive share "
          f"{train['label'].mean():.2f} / {test['label'].mean():.2f}")

    pipe = make_pipeline(
        TextEncoder(max_len=MAX_LEN, max_size=MAX_SIZE),
        QLLSTMClassifier(vocab_size=MAX_SIZE + 2, embedding_dim=64, hidden_size=64, pooling="max", lr=2e-3,
                         max_epochs=MAX_EPOCHS, bucket_by_length=True, random_state=0),
    )
    search = GridSearchCV(pipe, {"qllstmclassifier__alpha": [0.0, 0.1, 0.3]}, cv=3)
    search.fit(train["text"], train["label"])

    results = pd.DataFrame(search.cv_results_)[["param_qllstmclassifier__alpha", "mean_test_score",
                                                "std_test_score"]]
    print("\n3-fold cross-validated accuracy on the training reviews:")
    print(results.rename(columns={"param_qllstmclassifier__alpha": "alpha"}).to_string(index=False))
    accuracy = search.score(test["text"], test["label"])
    majority = max(np.mean(test["label"]), 1 - np.mean(test["label"]))
    print(f"\nbest alpha {search.best_params_['qllstmclassifier__alpha']}: test accuracy {accuracy:.3f} "
          f"(majority class {majority:.3f}); {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
