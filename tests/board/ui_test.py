"""LlamaBoard in a real headless Chromium (Selenium + chromedriver): open the
page, configure a tiny LoRA SFT run of SmolLM2-135M-Instruct on the demo data,
preview the masked dataset and the command, see a validation error from
lfl.args, start the run, watch the loss curve gain points (and an eval loss
point: val_size is set), stop it, chat with
the saved checkpoint (a streamed reply), predict with it (Evaluate & Predict:
BLEU/ROUGE come back), export it merged (Export), switch to Russian and Chinese.
Screenshots go to the folder given; timings are printed as one JSON line.

usage: python ui_test.py URL SCREENSHOT_DIR
"""
import json
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

URL, SHOTS = sys.argv[1], sys.argv[2]
os.makedirs(SHOTS, exist_ok=True)


def log(msg):
    print(f"[board-ui {time.strftime('%H:%M:%S')}] {msg}", flush=True)


opts = Options()
opts.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1500",
          "--no-first-run", "--disable-extensions", "--disable-background-networking", "--lang=en-US"):
    opts.add_argument(a)
driver = webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")), options=opts)
driver.set_script_timeout(30)
failures = []


def shot(name):
    path = os.path.join(SHOTS, name)
    # the whole page, not just the window
    h = driver.execute_script("return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
    driver.set_window_size(1400, min(max(h + 140, 900), 4000))
    driver.save_screenshot(path)
    log(f"screenshot {path}")


def el(id_):
    return driver.find_element(By.ID, id_)


def wait(cond, timeout, what):
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: cond())
    except Exception:
        shot("failure.png")
        msg = el("train_msg").text if driver.find_elements(By.ID, "train_msg") else ""
        raise AssertionError(f"timed out ({timeout}s) waiting for {what}; page message: {msg!r}")


def select_value(id_, value, timeout=20):
    """selects an option, waiting for it (the page may refill the list meanwhile)"""
    def attempt():
        try:
            Select(el(id_)).select_by_value(value)
            return el(id_).get_attribute("value") == value
        except Exception:  # noqa: BLE001 - stale or not there yet
            return False
    wait(attempt, timeout, f"{value!r} in #{id_}")


def set_field(id_, value):
    e = el(id_)
    e.clear()
    e.send_keys(str(value))


try:
    t_open = time.monotonic()
    driver.get(URL)
    wait(lambda: driver.execute_script("return document.body.dataset.ready") in ("1", "error"), 30, "the page")
    assert driver.execute_script("return document.body.dataset.ready") == "1", el("train_msg").text
    t_ready = time.monotonic()
    assert el("tab_train").text == "Train", el("tab_train").text

    # the model: the local SmolLM2 GGUF; its family's template is filled in
    model = Select(el("model_select"))
    pick = [o for o in model.options if "SmolLM2-135M-Instruct" in o.get_attribute("value")
            and o.get_attribute("value").endswith(".gguf")]
    assert pick, "the local SmolLM2 GGUF is offered: " + ", ".join(o.text for o in model.options[:5])
    model.select_by_value(pick[0].get_attribute("value"))
    assert el("template").get_attribute("value") == "smollm2", el("template").get_attribute("value")
    assert el("model_path").get_attribute("value").endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert Select(el("finetuning_type")).first_selected_option.text == "lora"
    assert Select(el("stage")).first_selected_option.text == "sft"
    assert el("learning_rate").get_attribute("value") == "0.00005", el("learning_rate").get_attribute("value")

    el("ds_identity").click()
    for k, v in (("cutoff_len", 64), ("max_steps", 8), ("logging_steps", 1), ("save_steps", 2),
                 ("per_device_train_batch_size", 2), ("gradient_accumulation_steps", 1),
                 ("learning_rate", "1e-3"), ("max_samples", 40), ("val_size", 0.1)):
        set_field(k, v)
    Select(el("compute_type")).select_by_value("fp32")
    t_configured = time.monotonic()

    # the dataset preview: prompt masked, answer trained
    el("preview_btn").click()
    wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#preview_body .tok-trained"), 60, "the dataset preview")
    masked = " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, "#preview_body .tok-masked"))
    trained = " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, "#preview_body .tok-trained"))
    assert "Who are you?" in masked and "Who are you?" not in trained, (masked[:200], trained[:200])
    shot("01_train_preview.png")
    el("preview_close").click()

    # a bad value is refused with lfl.args' own message
    set_field("lora_rank", 0)
    el("start_btn").click()
    wait(lambda: "lora_rank" in el("train_msg").text, 20, "the validation message")
    log("validation: " + el("train_msg").text)
    assert "expected" in el("train_msg").text
    set_field("lora_rank", 8)

    el("cmd_btn").click()
    wait(lambda: "lfl train" in el("cmd_box").text, 20, "the command preview")
    assert "lora_rank: 8" in el("cmd_box").text and "max_steps = 8," in el("cmd_box").text

    # start, and wait for the run to be running
    t_click = time.monotonic()
    el("start_btn").click()
    wait(lambda: "train_" in el("train_msg").text, 30, "the start answer")
    t_started = time.monotonic()
    wait(lambda: el("st_status").get_attribute("data-status") == "running", 30, "the run to start")
    t_running = time.monotonic()
    log(f"running {t_running - t_open:.1f}s after opening the page")
    wait(lambda: int(el("loss_chart").get_attribute("data-points")) >= 1, 150, "the first loss point")
    t_first = time.monotonic()
    wait(lambda: int(el("loss_chart").get_attribute("data-points")) >= 3, 150, "three loss points")
    # val_size: an evaluation every save_steps (LlamaBoard's rule) puts eval loss on the curve
    wait(lambda: int(el("loss_chart").get_attribute("data-eval-points")) >= 1, 150, "an eval loss point")
    assert el("st_eval").text not in ("", "-"), el("st_eval").text
    t_points = time.monotonic()
    assert el("st_loss").text not in ("", "-"), el("st_loss").text
    assert "MB" in el("st_mem").text, el("st_mem").text
    assert el("st_tps").text not in ("", "-") and el("st_eta").text not in ("", "-")
    assert "[lfl] step" in el("log_box").text, el("log_box").text[-300:]
    shot("02_training.png")

    # stop it: the checkpoints written so far stay
    el("stop_btn").click()
    wait(lambda: el("st_status").get_attribute("data-status") in ("stopped", "finished"), 60, "the run to stop")
    status = el("st_status").get_attribute("data-status")
    wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#runs_table tbody tr"), 10, "the runs table")
    row = driver.find_elements(By.CSS_SELECTOR, "#runs_table tbody tr")[0].text
    log("run row: " + row)
    shot("03_stopped.png")
    t_stopped = time.monotonic()

    # chat with the last checkpoint
    el("tab_chat").click()
    adapters = Select(el("chat_adapter"))
    wait(lambda: any("checkpoint-" in o.get_attribute("value") for o in Select(el("chat_adapter")).options), 20,
         "a checkpoint to chat with")
    ck = [o.get_attribute("value") for o in Select(el("chat_adapter")).options if "checkpoint-" in o.get_attribute("value")]
    select_value("chat_adapter", ck[-1])
    el("chat_load").click()
    wait(lambda: el("chat_status").get_attribute("data-loaded") in ("1", "0"), 90, "the model to load")
    assert el("chat_status").get_attribute("data-loaded") == "1", el("chat_status").text
    set_field("chat_max_new_tokens", 24)
    set_field("chat_system", "You are a concise assistant.")
    el("chat_input").send_keys("Who are you?")
    el("chat_send").click()
    wait(lambda: driver.find_elements(By.CSS_SELECTOR, ".bubble.assistant[data-done='1']"), 120, "the reply")
    reply = driver.find_elements(By.CSS_SELECTOR, ".bubble.assistant")[-1]
    chunks = int(reply.get_attribute("data-chunks") or 0)
    log(f"reply ({chunks} chunks): {reply.text!r}")
    assert chunks >= 2 and reply.text.strip(), "a streamed, non-empty reply"
    shot("04_chat.png")
    t_chat = time.monotonic()

    # Evaluate & Predict with the same checkpoint: generation metrics come back
    el("tab_eval").click()
    select_value("eval_adapter", ck[-1])
    el("eval_ds_identity").click()
    for k, v in (("eval_cutoff_len", 64), ("eval_max_samples", 2), ("eval_batch_size", 2), ("eval_max_new_tokens", 4)):
        set_field(k, v)
    el("eval_start").click()
    wait(lambda: el("eval_status").get_attribute("data-status") in ("finished", "failed"), 150, "the prediction")
    assert el("eval_status").get_attribute("data-status") == "finished", el("eval_log").text[-500:]
    wait(lambda: "predict_bleu-4" in el("eval_results").text, 10, "the prediction metrics")
    shot("05_predict.png")
    t_predict = time.monotonic()

    # Export: the checkpoint merged into the base, written as an HF folder
    el("tab_export").click()
    select_value("export_adapter", ck[-1])
    Select(el("export_dtype")).select_by_value("bfloat16")
    el("export_start").click()
    wait(lambda: el("export_status").get_attribute("data-status") in ("finished", "failed"), 150, "the export")
    assert el("export_status").get_attribute("data-status") == "finished", el("export_log").text[-500:]
    assert "model.safetensors" in el("export_results").text and "config.json" in el("export_results").text
    shot("06_export.png")
    t_export = time.monotonic()

    # languages
    el("tab_chat").click()
    Select(el("lang")).select_by_value("ru")
    wait(lambda: el("tab_train").text == "Обучение", 10, "Russian labels")
    assert el("tab_chat").text == "Чат" and driver.execute_script("return document.documentElement.lang") == "ru"
    assert el("chat_status").text.startswith("Загружено"), el("chat_status").text  # dynamic text too
    shot("07_chat_ru.png")
    Select(el("lang")).select_by_value("zh")
    wait(lambda: el("tab_train").text == "训练", 10, "Chinese labels")
    el("tab_train").click()
    shot("08_train_zh.png")
    driver.refresh()
    wait(lambda: driver.execute_script("return document.body.dataset.ready") == "1", 30, "the reloaded page")
    assert el("tab_train").text == "训练", "the language choice is remembered"
    Select(el("lang")).select_by_value("en")
    print(json.dumps({
        "page_ready_s": round(t_ready - t_open, 2),
        "open_to_start_click_s": round(t_click - t_open, 2),
        "open_to_running_s": round(t_running - t_open, 2),
        "start_click_to_answer_s": round(t_started - t_click, 2),
        "answer_to_running_status_s": round(t_running - t_started, 2),
        "configure_clicks_s": round(t_configured - t_ready, 2),
        "running_to_first_loss_point_s": round(t_first - t_running, 2),
        "running_to_three_points_s": round(t_points - t_running, 2),
        "stop_status": status, "stop_s": round(t_stopped - t_points, 2),
        "chat_load_and_reply_s": round(t_chat - t_stopped, 2), "reply_chunks": chunks,
        "predict_s": round(t_predict - t_chat, 2), "export_s": round(t_export - t_predict, 2),
    }), flush=True)
except Exception as e:  # noqa: BLE001 - report and fail
    failures.append(repr(e))
    try:
        shot("failure.png")
    except Exception:  # noqa: BLE001
        pass
finally:
    driver.quit()

if failures:
    print("FAIL board ui: " + failures[0], flush=True)
    sys.exit(1)
print("board ui: ok", flush=True)
