# class: F
# assignment: ex33_2_linear_rnn
# batch: f
# attack: the submitted file is not a notebook (not even JSON): its job fails alone.
# deserve *: 0
# %% raw-notebook
# { "cells": [ this is not a notebook
