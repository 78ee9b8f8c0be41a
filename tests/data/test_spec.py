"""The one ``--data`` grammar, NAME[:[PATH][,KEY=VALUE|,FLAG]*]: every source's path and options, and the errors."""
import pytest

from srr.data import DataSpec, Option, list_sources, load_data, parse_spec, register_source
from srr.data.sources import _SOURCES
from srr.errors import DataError


@pytest.mark.parametrize("text,name,path,options", [
    ("digits", "digits", None, {}),
    ("idx:/data/mnist", "idx", "/data/mnist", {}),
    ("idx:/data/a,b", "idx", "/data/a,b", {}),  # a source without options: every comma belongs to the path
    ("npz:/x/y.npz", "npz", "/x/y.npz", {}),
    ("cifar10:/c", "cifar10", "/c", {}),
    ("cifar100:/c", "cifar100", "/c", {"coarse": False}),
    ("cifar100:/c,coarse", "cifar100", "/c", {"coarse": True}),
    ("cifar100:/c,coarse=false", "cifar100", "/c", {"coarse": False}),
    ("cifar100:/my,dir,coarse", "cifar100", "/my,dir", {"coarse": True}),
    ("folder:/imgs", "folder", "/imgs", {"size": None}),
    ("folder:/imgs,size=64", "folder", "/imgs", {"size": 64}),
    ("folder:/a,b/imgs,size=+8", "folder", "/a,b/imgs", {"size": 8}),
    ("synthetic", "synthetic", None, {"k": 4, "d": 32, "rank": 3, "n": 300, "noise": 0.1, "seed": 0}),
    ("synthetic:", "synthetic", None, {"k": 4, "d": 32, "rank": 3, "n": 300, "noise": 0.1, "seed": 0}),
    ("synthetic:k=3,d=20,rank=4,n=50,noise=0.05,seed=7", "synthetic", None,
     {"k": 3, "d": 20, "rank": 4, "n": 50, "noise": 0.05, "seed": 7}),
    ("synthetic:noise=0,k=2,", "synthetic", None, {"k": 2, "d": 32, "rank": 3, "n": 300, "noise": 0.0, "seed": 0}),
    ("text:/t.txt", "text", "/t.txt", {}),
])
def test_every_source_parses_its_path_and_options(text, name, path, options):
    spec = parse_spec(text)
    assert spec == DataSpec(name, path, options, text) and str(spec) == text
    assert type(spec.options["noise"]) is float if "noise" in options else True


@pytest.mark.parametrize("text,message", [
    ("", r"empty data specification"),
    ("digts", r"unknown data source 'digts'; did you mean digits\? \(known: .*synthetic"),
    ("digits:big", r"data source 'digits' takes no argument, got 'big'"),
    ("idx", r"data source 'idx' needs a path: --data idx:PATH"),
    ("folder:", r"data source 'folder' needs a path"),
    ("folder:,size=3", r"data source 'folder' needs a path"),
    ("folder:/d,size=0", r"^folder option size must lie in \[1, 65536\], got 0$"),
    ("folder:/d,size=100000", r"^folder option size must lie in \[1, 65536\], got 100000$"),
    ("folder:/d,size=1.5", r"^folder option size must be an integer, got '1.5'$"),
    ("folder:/d,size=", r"^folder option size needs a value: ',size=VALUE'$"),
    ("folder:/d,size", r"^folder option size needs a value"),
    ("folder:/d,size=3,size=4", r"^folder option size is given twice$"),
    ("folder:/nowhere,sise=64", r"^bad folder option 'sise=64': not one of its options \(size=\)$"),
    ("cifar100:/c,coarse=maybe", r"^cifar100 option coarse is a flag \(',coarse' or 'coarse=true\|false'\), got"),
    ("synthetic:q=3", r"^bad synthetic option 'q=3': not one of its options \(k=, d=, rank=, n=, noise=, seed=\)$"),
    ("synthetic:kk=3", r"bad synthetic option 'kk=3'"),
    ("synthetic:k", r"^synthetic option k needs a value"),
    ("synthetic:k=abc", r"^synthetic option k must be an integer, got 'abc'$"),
    ("synthetic:k=0", r"^synthetic option k must lie in \[1, 65536\], got 0$"),
    ("synthetic:n=-1", r"^synthetic option n must lie in \[1, 1073741824\], got -1$"),
    ("synthetic:n=99999999999999999999999999", r"^synthetic option n must lie in \[1, 1073741824\]"),
    ("synthetic:noise=nan", r"^synthetic option noise must be a finite number, got nan$"),
    ("synthetic:noise=inf", r"^synthetic option noise must be a finite number, got inf$"),
    ("synthetic:noise=-0.5", r"^synthetic option noise must be >= 0, got -0.5$"),
    ("synthetic:noise=x", r"^synthetic option noise must be a number, got 'x'$"),
    ("synthetic:seed=-2", r"^synthetic option seed must lie in \[0, 9223372036854775807\], got -2$"),
])
def test_bad_specs_are_refused_with_one_line_naming_the_option(text, message):
    with pytest.raises(DataError, match=message) as info:
        parse_spec(text)
    assert "\n" not in str(info.value)


def test_an_existing_path_may_look_like_an_option(tmp_path):
    odd = tmp_path / "imgs,sise=64"
    odd.mkdir()
    assert parse_spec(f"folder:{odd}").path == str(odd)
    assert parse_spec(f"folder:{odd},size=8").options == {"size": 8}


def test_load_data_checks_the_task_before_the_arguments_and_records_the_users_string():
    with pytest.raises(DataError, match="gives text for language models"):
        load_data("text:/no/such/file,size=3")
    data = load_data("synthetic:n=20,k=2,d=8,")
    assert data.spec == "synthetic:n=20,k=2,d=8," and data.name == "synthetic" and data.num_classes == 2
    assert len(data.train_set) + len(data.test_set) == 40 and data.image_size == (1, 8)


def test_register_source_declares_options_and_hands_the_loader_the_parsed_spec():
    seen = []

    @register_source("_probe", "a test source", path=True,
                     options={"scale": Option(float, 1.0, low=0.0, high=2.0), "fast": bool, "tag": str})
    def _probe(spec):
        seen.append(spec)
        return spec

    try:
        assert "_probe" in list_sources("image") and "_probe" not in list_sources("lm")
        assert load_data("_probe:/p,q,scale=0.5,fast,tag=x=y") is seen[-1]
        assert seen[-1] == DataSpec("_probe", "/p,q", {"scale": 0.5, "fast": True, "tag": "x=y"},
                                    "_probe:/p,q,scale=0.5,fast,tag=x=y")
        with pytest.raises(DataError, match=r"^_probe option scale must lie in \[0, 2\], got 3$"):
            load_data("_probe:/p,scale=3")
    finally:
        _SOURCES.pop("_probe")
    with pytest.raises(ValueError, match="task must be one of image, lm"):
        register_source("_bad", "x", task="audio")
    with pytest.raises(TypeError, match="int, float, bool or str"):
        Option(list)
