"""Multivariate sequence classification on real sensor data: weekday or weekend?

Task: the UCI Air Quality device logged five metal-oxide gas sensors plus temperature and
humidity every hour for a year in an Italian city. Each day is one sequence of its hourly
readings (8 channels, plus the hour of day as sin/cos), and the label is whether the day is
a weekday or a weekend day: traffic, and so the pollution profile over the day, differs.

Hours with a missing reading are dropped, so days have 12 to 24 steps: the classifier takes
them as a list of variable-length sequences and never sees padding. Days are split 70/30 at
random, stratified by label (a chronological split puts all the winter in the test set,
where the drifting raw sensors read differently, and falls to the majority baseline).

Run:  python examples/classify_sequences.py     (well under two minutes on 2 CPU cores)
Data: $QLTS_DATA/air_quality/air_quality_clean.csv.gz, or ../shared/data beside the repository.
"""
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix
from sklearn.model_selection import train_test_split

from qlts import QLLSTMClassifier
from qlts.datasets import load_air_quality

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if "QLTS_DATA" not in os.environ and SHARED.is_dir():
    os.environ["QLTS_DATA"] = str(SHARED)  # the data sets checked out beside the repository

MIN_HOURS, MAX_EPOCHS = 12, 30


def daily_sequences():
    df = load_air_quality()
    channels = [c for c in df.columns if c.startswith("PT08")] + ["T", "RH", "AH"]
    hour = df.index.hour.to_numpy()
    table = df[channels].assign(hour_sin=np.sin(2 * np.pi * hour / 24), hour_cos=np.cos(2 * np.pi * hour / 24))
    days, labels = [], []
    for day, rows in table.groupby(df.index.normalize()):
        rows = rows.dropna()
        if len(rows) >= MIN_HOURS:
            days.append(rows.to_numpy(np.float32))
            labels.append("weekend" if day.day_of_week >= 5 else "weekday")
    return days, np.array(labels), list(table.columns)


def main():
    start = time.perf_counter()
    days, y, channels = daily_sequences()
    lengths = [len(d) for d in days]
    print(f"{len(days)} days, {len(channels)} channels, {min(lengths)}-{max(lengths)} hourly steps per day; "
          f"labels: {pd.Series(y).value_counts().to_dict()}")

    train, test = train_test_split(np.arange(len(days)), test_size=0.3, stratify=y, random_state=0)
    rows = np.concatenate([days[i] for i in train])  # scale each channel with training statistics only
    mean, std = rows.mean(axis=0), rows.std(axis=0)
    X = [(d - mean) / std for d in days]
    X_train, X_test = [X[i] for i in train], [X[i] for i in test]

    clf = QLLSTMClassifier(hidden_size=32, max_epochs=MAX_EPOCHS, lr=5e-3, batch_size=32, random_state=0)
    clf.fit(X_train, y[train])
    pred = clf.predict(X_test)

    majority = pd.Series(y[train]).mode()[0]
    baseline = accuracy_score(y[test], np.full(len(test), majority))
    print(f"\ntest accuracy (QL-LSTM, {len(test)} held-out days): {accuracy_score(y[test], pred):.3f}")
    print(f"majority-class baseline (always '{majority}'):      {baseline:.3f}")
    print("\nconfusion matrix (rows: true, columns: predicted):")
    print(pd.DataFrame(confusion_matrix(y[test], pred, labels=clf.classes_), index=clf.classes_,
                       columns=clf.classes_).to_string())
    print(f"\ndone in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
