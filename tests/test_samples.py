"""Explore's samples: a session's sequence is reproducible from its seed, sessions differ, labels are the dataset's."""
import numpy as np
import pytest

from imageai import datasets
from imageai.samples import sample_dataset_for, sample_image


@pytest.mark.parametrize("name", ["digits", "shapes"])
def test_a_sample_is_a_test_image_of_the_dataset_with_its_own_label(name):
    data = datasets.shared_dataset(name)
    for counter in range(1, 6):
        array, label = sample_image(name, 7, counter)
        matches = np.flatnonzero((data.test_images == array).reshape(len(data.test_images), -1).all(1))
        assert matches.size >= 1
        assert label in {data.classes[int(data.test_labels[i])] for i in matches}


def test_the_same_seed_repeats_its_sequence_and_other_seeds_give_other_sequences():
    def sequence(seed: int) -> list[bytes]:
        return [sample_image("digits", seed, counter)[0].tobytes() for counter in range(1, 9)]

    assert sequence(1) == sequence(1)
    assert len(set(sequence(1))) > 1  # the counter moves on through the test set
    firsts = {sample_image("digits", seed, 1)[0].tobytes() for seed in range(20)}
    assert len(firsts) > 10  # sessions do not all start from the same picture


def test_a_model_gets_samples_from_its_own_dataset_or_one_with_its_kind_of_input():
    assert sample_dataset_for({"dataset": {"name": "shapes"}}) == "shapes"
    assert sample_dataset_for({"dataset": {"name": "own_photos"}, "input": {"preprocess": "mnist"}}) == "digits"
    assert sample_dataset_for({"dataset": {"name": "cifar10"}, "input": {"preprocess": "resize"}}) == "shapes"
