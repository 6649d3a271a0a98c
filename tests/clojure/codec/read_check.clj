;; Reads the Fressian files another implementation wrote for the interop
;; cases and compares them with the expected values.
;;
;; Usage: clojure -cp <data.fressian.jar>:<fressian.jar> read_check.clj INDIR
;; Prints "OK <name>", "FAIL <name>: …" or "MISSING <name>" per case and
;; "DONE <checked>" at the end.
(load-file (str (.getParent (java.io.File. ^String *file*)) "/cases.clj"))

(let [[in] *command-line-args*
      checked (atom 0)]
  (doseq [[name [_ expected]] cases]
    (let [f (java.io.File. (str in "/" name ".fress"))]
      (if-not (.exists f)
        (println "MISSING" name)
        (let [result (try (read-all (.getPath f)) (catch Throwable t t))]
          (swap! checked inc)
          (cond
            (instance? Throwable result)
            (println "FAIL" (str name ":") "reading threw" (str result))
            (= (mapv normalize expected) (mapv normalize result))
            (println "OK" name)
            :else
            (println "FAIL" (str name ":") "expected" (pr-str (take 3 (map normalize expected)))
                     "got" (pr-str (take 3 (map normalize result)))))))))
  (println "DONE" @checked))
